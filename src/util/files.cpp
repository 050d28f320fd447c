#include "util/files.h"

#include <ctime>
#include <fstream>
#include <sstream>

#include "gondolin/error.h"

namespace gondolin {

std::optional<std::string> read_file_if_exists(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string read_file(const std::filesystem::path& path) {
  auto data = read_file_if_exists(path);
  if (!data) throw Error(ErrorKind::Io, "cannot read " + path.string());
  return std::move(*data);
}

void write_file_atomic(const std::filesystem::path& path, std::string_view data, std::filesystem::perms perms) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(ErrorKind::Io, "cannot write " + tmp.string());
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) throw Error(ErrorKind::Io, "error writing " + tmp.string());
  }
  std::filesystem::permissions(tmp, perms);
  std::filesystem::rename(tmp, path);
}

std::string now_rfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace gondolin
