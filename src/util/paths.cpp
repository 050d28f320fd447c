#include "util/paths.h"

#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "gondolin/error.h"

namespace gondolin::paths {
namespace {

std::filesystem::path home_dir() {
  if (const char* h = std::getenv("HOME"); h && *h) return h;
  if (passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) return pw->pw_dir;
  throw Error(ErrorKind::Io, "cannot find the home directory: set HOME");
}

std::filesystem::path xdg(const char* var, const char* fallback) {
  if (const char* v = std::getenv(var); v && *v == '/') return std::filesystem::path(v) / "gondolin";
  return home_dir() / fallback / "gondolin";
}

}  // namespace

std::filesystem::path cache_dir() { return xdg("XDG_CACHE_HOME", ".cache"); }
std::filesystem::path config_dir() { return xdg("XDG_CONFIG_HOME", ".config"); }

std::filesystem::path self_exe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error(ErrorKind::Io, "cannot read /proc/self/exe: " + ec.message());
  return p;
}

std::filesystem::path find_program(const std::string& name) {
  if (name.find('/') != std::string::npos)
    return ::access(name.c_str(), X_OK) == 0 ? std::filesystem::path(name) : std::filesystem::path();
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  dirs += ":/usr/sbin:/sbin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (!dir.empty()) {
      std::filesystem::path candidate = std::filesystem::path(dir) / name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    start = end + 1;
  }
  return {};
}

std::filesystem::path make_private_temp_dir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data()))
    throw Error(ErrorKind::Io, "cannot create a temporary directory in " + tmpl + ": " + std::strerror(errno));
  return buf.data();
}

}  // namespace gondolin::paths
