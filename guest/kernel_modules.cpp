#include "kernel_modules.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "klog.h"

namespace gondolin::agent {

int load_kernel_modules(const std::string& list_path) {
  std::ifstream list(list_path);
  int loaded = 0;
  std::string path;
  while (std::getline(list, path)) {
    if (path.empty() || path[0] == '#') continue;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      klog("cannot open module %s: %s", path.c_str(), std::strerror(errno));
      continue;
    }
    long rc = ::syscall(SYS_finit_module, fd, "", 0);
    int err = errno;
    ::close(fd);
    if (rc == 0) {
      ++loaded;
    } else if (err != EEXIST) {
      klog("cannot load module %s: %s", path.c_str(), std::strerror(err));
    }
  }
  return loaded;
}

}  // namespace gondolin::agent
