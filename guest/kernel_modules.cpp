#include "kernel_modules.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "klog.h"

namespace gondolin::agent {

KernelModules KernelModules::from_list(const std::string& list_path) {
  KernelModules m;
  m.root_fd_ = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  std::ifstream list(list_path);
  std::string line;
  while (std::getline(list, line)) {
    std::istringstream words(line);
    std::string cls, path;
    if (!(words >> cls >> path) || cls[0] == '#') continue;
    while (!path.empty() && path[0] == '/') path.erase(0, 1);
    m.modules_.emplace_back(cls, path);
  }
  return m;
}

KernelModules::KernelModules(KernelModules&& o) noexcept
    : root_fd_(std::exchange(o.root_fd_, -1)), modules_(std::move(o.modules_)), loaded_(std::move(o.loaded_)) {}

KernelModules& KernelModules::operator=(KernelModules&& o) noexcept {
  if (this != &o) {
    if (root_fd_ >= 0) ::close(root_fd_);
    root_fd_ = std::exchange(o.root_fd_, -1);
    modules_ = std::move(o.modules_);
    loaded_ = std::move(o.loaded_);
  }
  return *this;
}

KernelModules::~KernelModules() {
  if (root_fd_ >= 0) ::close(root_fd_);
}

int KernelModules::load(const std::string& cls) {
  int count = 0;
  for (const auto& [c, path] : modules_) {
    if (c != cls || loaded_.count(path)) continue;
    loaded_.insert(path);
    int fd = ::openat(root_fd_, path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      klog("cannot open module %s: %s", path.c_str(), std::strerror(errno));
      continue;
    }
    long rc = ::syscall(SYS_finit_module, fd, "", 0);
    int err = errno;
    ::close(fd);
    if (rc == 0)
      ++count;
    else if (err != EEXIST)
      klog("cannot load module %s: %s", path.c_str(), std::strerror(err));
  }
  return count;
}

KernelModules& kernel_modules() {
  static KernelModules instance;
  return instance;
}

}  // namespace gondolin::agent
