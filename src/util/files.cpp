#include "util/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "gondolin/error.h"
#include "util/unique_fd.h"

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

namespace {

// Writes all of `data` to `fd`; 0, or the errno of the write that failed.
int write_fully(int fd, std::string_view data) {
  for (std::size_t off = 0; off < data.size();) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    off += static_cast<std::size_t>(n);
  }
  return 0;
}

}  // namespace

void write_file_atomic(const std::filesystem::path& path, std::string_view data, std::filesystem::perms perms,
                       Durability durability) {
  // One temporary name per process: two processes writing the same file
  // (two builds, two starts naming an image) never share one.
  std::filesystem::path tmp = path;
  tmp += "." + std::to_string(::getpid()) + ".tmp";
  // Created with its final mode (never wider, whatever the umask), then renamed over.
  ::unlink(tmp.c_str());
  const auto mode = static_cast<mode_t>(perms & std::filesystem::perms::mask);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) throw Error(ErrorKind::Io, "cannot write " + tmp.string() + ": " + std::strerror(errno));
  ::fchmod(fd.get(), mode);
  int err = write_fully(fd.get(), data);
  if (err == 0 && durability == Durability::Synced && ::fsync(fd.get()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    throw Error(ErrorKind::Io, "error writing " + tmp.string() + ": " + std::strerror(err));
  }
  fd.reset();
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    throw Error(ErrorKind::Io, "cannot rename " + tmp.string() + " to " + path.string() + ": " + ec.message());
  }
}

}  // namespace gondolin
