#include "config/host_secret_rules.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "gondolin/error.h"
#include "util/files.h"
#include "util/logging.h"

namespace gondolin::config {

namespace {

constexpr std::size_t kMaxSecretBytes = 64 * 1024;

// What follows NAME@HOSTS=: "@FILE" (the file's contents), "@-" (one line of
// stdin; the rest stays for -i), or the value itself, which every local user
// can read in `ps` while we run: that one is taken, with a warning.
template <typename Bad>
std::string secret_value_from(const std::string& written, const Bad& bad) {
  auto strip_newline = [](std::string v) {
    if (!v.empty() && v.back() == '\n') v.pop_back();
    if (!v.empty() && v.back() == '\r') v.pop_back();
    return v;
  };
  if (written == "@-") {
    std::string line;
    char c = 0;
    while (line.size() < kMaxSecretBytes && ::read(STDIN_FILENO, &c, 1) == 1 && c != '\n') line.push_back(c);
    return strip_newline(line);
  }
  if (written.rfind('@', 0) == 0) {
    const std::string path = written.substr(1);
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) throw bad("cannot read the value from " + path + ": " + ec.message());
    if (size > kMaxSecretBytes) throw bad(path + " is larger than " + std::to_string(kMaxSecretBytes) + " bytes");
    auto data = read_file_if_exists(path);
    if (!data) throw bad("cannot read the value from " + path);
    return strip_newline(*data);
  }
  log().warn(
      "the value of a --host-secret given on the command line is visible to every local user (ps); "
      "prefer the host's $NAME, =@FILE or =@- (one line of stdin)");
  return written;
}

}  // namespace

HostSecret parse_host_secret(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::Usage, "invalid --host-secret '" + text.substr(0, text.find('=')) + "': " + why);
  };
  std::size_t at = text.find('@');
  if (at == std::string::npos || at == 0) throw bad("expected NAME@HOST[,HOST...][=VALUE]");
  HostSecret s;
  s.name = text.substr(0, at);
  std::size_t eq = text.find('=', at);
  std::string hosts = text.substr(at + 1, eq == std::string::npos ? std::string::npos : eq - at - 1);
  std::size_t start = 0;
  while (start <= hosts.size()) {
    std::size_t comma = hosts.find(',', start);
    if (comma == std::string::npos) comma = hosts.size();
    std::string h = hosts.substr(start, comma - start);
    if (h.empty()) throw bad("empty host");
    s.hosts.push_back(h);
    start = comma + 1;
  }
  if (eq != std::string::npos) {
    s.value = secret_value_from(text.substr(eq + 1), bad);
  } else {
    const char* env = std::getenv(s.name.c_str());
    if (!env || !*env) throw bad("no =VALUE given and $" + s.name + " is not set on the host");
    s.value = env;
  }
  if (s.value.empty()) throw bad("empty value");
  return s;
}

}  // namespace gondolin::config
