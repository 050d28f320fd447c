#include "control_port.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "klog.h"

namespace gondolin::agent {
namespace {

std::string find_port_device(const std::string& name) {
  DIR* dir = ::opendir("/sys/class/virtio-ports");
  if (!dir) return {};
  std::string found;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(std::string("/sys/class/virtio-ports/") + e->d_name + "/name");
    std::string port_name;
    if (std::getline(f, port_name) && port_name == name) {
      found = std::string("/dev/") + e->d_name;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

}  // namespace

int open_named_port(const std::string& name, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::string dev = find_port_device(name);
    if (!dev.empty()) {
      int fd = ::open(dev.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
      if (fd >= 0) return fd;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      klog("virtio port %s not found", name.c_str());
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace gondolin::agent
