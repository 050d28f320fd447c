#include "root_layers.h"

#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "boot.h"

namespace gondolin::agent {
namespace {

std::string read_serial(const std::string& block_name) {
  std::ifstream f("/sys/block/" + block_name + "/serial");
  std::string serial;
  std::getline(f, serial);
  return serial;
}

std::string scan_for_serial(const std::string& serial) {
  DIR* d = ::opendir("/sys/block");
  if (!d) return "";
  std::string found;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("vd", 0) == 0 && read_serial(name) == serial) {
      found = name;
      break;
    }
  }
  ::closedir(d);
  return found;
}

std::string mount_error(const char* target, const char* type) {
  return std::string("mount ") + target + " (" + type + "): " + std::strerror(errno);
}

}  // namespace

bool parse_root_writes(const std::string& text, RootWrites& out) {
  if (text == "cow")
    out = RootWrites::Cow;
  else if (text.empty() || text == "memory")
    out = RootWrites::Memory;
  else if (text == "readonly")
    out = RootWrites::Readonly;
  else
    return false;
  return true;
}

std::string find_disk_by_serial(const std::string& serial, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::string name = scan_for_serial(serial);
    if (!name.empty() && wait_for_path("/dev/" + name, std::chrono::seconds(5))) return "/dev/" + name;
    if (std::chrono::steady_clock::now() >= deadline) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::string mount_root_layers(const std::string& root_dev, const std::string& root_type, RootWrites writes) {
  ::mkdir("/lower", 0755);
  ::mkdir("/rw", 0755);
  ::mkdir("/newroot", 0755);
  if (::mount(root_dev.c_str(), "/lower", root_type.c_str(), MS_RDONLY, nullptr) != 0)
    return mount_error("/lower", root_type.c_str());
  if (writes == RootWrites::Cow) {
    std::string upper = find_disk_by_serial("gondolin-upper", std::chrono::seconds(10));
    if (upper.empty()) return "the writable root disk (serial gondolin-upper) did not appear";
    // noinit_itable: the host made the file system with lazy inode tables
    // and the file sparse; zeroing them would cost guest time and host disk.
    if (::mount(upper.c_str(), "/rw", "ext4", MS_NOATIME, "discard,noinit_itable") != 0)
      return mount_error("/rw", "ext4");
  } else if (::mount("tmpfs", "/rw", "tmpfs", 0, "mode=0755") != 0) {
    return mount_error("/rw", "tmpfs");
  }
  ::mkdir("/rw/upper", 0755);
  ::mkdir("/rw/work", 0755);
  if (::mount("overlay", "/newroot", "overlay", 0, "lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work") != 0)
    return mount_error("/newroot", "overlay");
  return "";
}

namespace {
bool g_root_read_only = false;  // the agent is single-threaded
}  // namespace

int set_root_read_only(bool read_only) {
  // A per-mount flag: the overlay underneath stays as it was.
  unsigned long flags = MS_REMOUNT | MS_BIND | (read_only ? MS_RDONLY : 0);
  if (::mount(nullptr, "/", nullptr, flags, nullptr) != 0) return errno;
  if (read_only) g_root_read_only = true;
  return 0;
}

bool root_read_only() { return g_root_read_only; }

}  // namespace gondolin::agent
