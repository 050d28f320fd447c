#include "boot.h"

#include <fcntl.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "kernel_modules.h"
#include "klog.h"
#include "root_layers.h"
#include "virtio_devices.h"

namespace gondolin::agent {
namespace {

std::uint64_t clock_ns(clockid_t id) {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

bool do_mount(const char* src, const char* target, const char* type, unsigned long flags, const char* data,
              std::string& error) {
  ::mkdir(target, 0755);
  if (::mount(src, target, type, flags, data) == 0) return true;
  error = std::string("mount ") + target + " (" + (type ? type : "bind") + "): " + std::strerror(errno);
  return false;
}

std::map<std::string, std::string> kernel_parameters() {
  std::map<std::string, std::string> params;
  std::ifstream f("/proc/cmdline");
  std::string word;
  while (f >> word) {
    auto eq = word.find('=');
    if (eq == std::string::npos)
      params[word] = "";
    else
      params[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return params;
}

void bring_up_loopback() {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    ::ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  ::close(s);
}

}  // namespace

bool wait_for_path(const std::string& path, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  struct stat st {};
  while (::stat(path.c_str(), &st) != 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

std::uint64_t monotonic_ns() { return clock_ns(CLOCK_MONOTONIC); }
std::uint64_t boottime_ns() { return clock_ns(CLOCK_BOOTTIME); }

BootResult boot_as_init() {
  BootResult r;
  std::uint64_t t0 = monotonic_ns();
  auto mark = [&](const char* phase) {
    std::uint64_t now = monotonic_ns();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s=%.3fs", r.report.empty() ? "" : " ", phase,
                  static_cast<double>(now - t0) / 1e9);
    r.report += buf;
    t0 = now;
  };
  std::string& err = r.error;
  if (!do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, err) ||
      !do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, err) ||
      !do_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755", err))
    return r;
  klog_open();
  mark("pseudo-fs");

  utsname uts{};
  ::uname(&uts);
  kernel_modules() = KernelModules::from_list(std::string("/lib/modules/") + uts.release + "/gondolin.modules");
  kernel_modules().load("boot");
  // Bus drivers only for the bus this machine has (microvm: virtio-mmio, q35: PCI).
  struct stat st {};
  bool has_pci = ::stat("/sys/bus/pci/devices/0000:00:00.0", &st) == 0;
  kernel_modules().load(has_pci ? "pci" : "mmio");
  // The host adds a network device only when the VM has a network.
  r.network = has_virtio_device(kVirtioNet);
  if (r.network) kernel_modules().load("net");
  // virtio-fs devices (a VM's mounts, a boot template's spare slots): FUSE
  // now, so a template holds it loaded and no templated start with a mount
  // loads it under TCG (~0.1-0.2 s of each such start).
  if (has_virtio_device(kVirtioFs)) kernel_modules().load("fs");
  mark("modules");
  // DHCP runs while the root file system is mounted below.
  if (r.network) {
    r.dhcp = start_dhcp();
    mark("dhcp-start");
  }

  auto params = kernel_parameters();
  std::string root_type = params.count("gondolin.rootfstype") ? params["gondolin.rootfstype"] : "ext4";
  RootWrites writes = RootWrites::Memory;
  if (!parse_root_writes(params["gondolin.rootfs"], writes)) {
    err = "unknown gondolin.rootfs=" + params["gondolin.rootfs"];
    return r;
  }
  r.read_only_root = writes == RootWrites::Readonly;
  // By serial; an older launcher without serials gets gondolin.root.
  std::string root_dev = find_disk_by_serial("gondolin-root", std::chrono::seconds(10));
  if (root_dev.empty()) root_dev = params.count("gondolin.root") ? params["gondolin.root"] : "/dev/vda";
  if (!wait_for_path(root_dev, std::chrono::seconds(1))) {
    err = "root device " + root_dev + " did not appear";
    return r;
  }
  mark("root-device");

  // The image is mounted read-only and never changes; the session's writes
  // land in an upper layer that vanishes with the VM (see root_layers.h).
  err = mount_root_layers(root_dev, root_type, writes);
  if (!err.empty()) return r;

  for (const char* m : {"/proc", "/sys", "/dev"}) {
    std::string target = std::string("/newroot") + m;
    ::mkdir(target.c_str(), 0755);
    if (::mount(m, target.c_str(), nullptr, MS_MOVE, nullptr) != 0) {
      err = std::string("move ") + m + ": " + std::strerror(errno);
      return r;
    }
  }
  if (::chdir("/newroot") != 0 || ::mount(".", "/", nullptr, MS_MOVE, nullptr) != 0 || ::chroot(".") != 0 ||
      ::chdir("/") != 0) {
    err = std::string("switch root: ") + std::strerror(errno);
    return r;
  }
  mark("switch-root");
  r.ok = true;
  return r;
}

void mount_runtime_filesystems() {
  std::string ignored;
  do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666", ignored);
  do_mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", ignored);
  do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", ignored);
  do_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755", ignored);
  ::mkdir("/run/lock", 01777);
  ::symlink("/proc/self/fd", "/dev/fd");
  ::symlink("/proc/self/fd/0", "/dev/stdin");
  ::symlink("/proc/self/fd/1", "/dev/stdout");
  ::symlink("/proc/self/fd/2", "/dev/stderr");
  bring_up_loopback();
}

}  // namespace gondolin::agent
