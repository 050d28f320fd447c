#include "virtio_devices.h"

#include <dirent.h>

#include <fstream>
#include <string>

namespace gondolin::agent {

bool has_virtio_device(unsigned device_id) {
  DIR* dir = ::opendir("/sys/bus/virtio/devices");
  if (!dir) return false;
  bool found = false;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(std::string("/sys/bus/virtio/devices/") + e->d_name + "/device");
    std::string id;  // "0x001a"
    if (!(f >> id)) continue;
    try {
      if (std::stoul(id, nullptr, 0) == device_id) {
        found = true;
        break;
      }
    } catch (const std::exception&) {}
  }
  ::closedir(dir);
  return found;
}

}  // namespace gondolin::agent
