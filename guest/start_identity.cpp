#include "start_identity.h"

#include <fcntl.h>
#include <linux/random.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "klog.h"
#include "root_layers.h"

namespace gondolin::agent {
namespace {

void set_clock(std::uint64_t realtime_ns) {
  if (!realtime_ns) return;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(realtime_ns / 1000000000ull);
  ts.tv_nsec = static_cast<long>(realtime_ns % 1000000000ull);
  if (::clock_settime(CLOCK_REALTIME, &ts) != 0) klog("cannot set the clock: %s", std::strerror(errno));
}

void reseed_rng(const std::string& entropy) {
  if (entropy.empty()) return;
  int fd = ::open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  std::vector<std::uint8_t> storage(sizeof(rand_pool_info) + entropy.size());
  auto* info = reinterpret_cast<rand_pool_info*>(storage.data());
  info->entropy_count = static_cast<int>(entropy.size() * 8);
  info->buf_size = static_cast<int>(entropy.size());
  std::memcpy(storage.data() + sizeof(rand_pool_info), entropy.data(), entropy.size());
  if (::ioctl(fd, RNDADDENTROPY, info) != 0) klog("cannot seed rng: %s", std::strerror(errno));
  // Fold it into the CRNG now, not at the next periodic reseed: two VMs
  // resumed from one template must not hand out the same random bytes.
  if (::ioctl(fd, RNDRESEEDCRNG) != 0) klog("cannot reseed the crng: %s", std::strerror(errno));
  ::close(fd);
}

// virtio-net changes its address live (the control queue tells QEMU, whose
// receive filter follows), so open sockets and the lease stay valid.
void set_mac(const std::string& mac) {
  if (mac.size() != 6) return;
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "eth0", IFNAMSIZ - 1);
  if (::ioctl(fd, SIOCGIFHWADDR, &ifr) == 0 && std::memcmp(ifr.ifr_hwaddr.sa_data, mac.data(), 6) != 0) {
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    std::memcpy(ifr.ifr_hwaddr.sa_data, mac.data(), 6);
    if (::ioctl(fd, SIOCSIFHWADDR, &ifr) != 0) klog("cannot set eth0's MAC address: %s", std::strerror(errno));
  }
  ::close(fd);
}

// `id` and a newline as the whole of `path` (0444 if new); 0 or an errno.
int write_id(const char* path, const std::string& id) {
  int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
  if (fd < 0) return errno;
  std::string line = id + "\n";
  ssize_t w = ::write(fd, line.data(), line.size());
  int e = w < 0 ? errno : w != static_cast<ssize_t>(line.size()) ? EIO : 0;
  ::close(fd);
  return e;
}

int write_machine_id_file(const std::string& id) {
  int e = write_id("/etc/machine-id.gondolin", id);
  if (e == 0 && ::rename("/etc/machine-id.gondolin", "/etc/machine-id") != 0) e = errno;
  if (e != 0) ::unlink("/etc/machine-id.gondolin");
  return e;
}

// After the first start has written /etc/machine-id, a copy on /run (tmpfs)
// is bind-mounted over it, and later starts (clones of a boot template)
// rewrite only that copy: writing through the root's overlay and ext4 took
// 45 ms of a 0.4 s templated start under TCG, the tmpfs write next to
// nothing. The bind mount is part of the saved kernel state, the flag part
// of the agent's memory, so both come with every clone.
constexpr const char* kRunMachineId = "/run/gondolin/machine-id";
bool machine_id_bound = false;

void bind_run_copy(const std::string& id) {
  ::mkdir("/run/gondolin", 0755);
  int e = write_id(kRunMachineId, id);
  if (e == 0 && ::mount(kRunMachineId, "/etc/machine-id", nullptr, MS_BIND, nullptr) != 0) e = errno;
  if (e != 0) {
    klog("cannot bind %s over /etc/machine-id: %s", kRunMachineId, std::strerror(e));
    return;
  }
  machine_id_bound = true;
}

void set_machine_id(const std::string& id) {
  if (id.empty()) return;
  if (machine_id_bound) {
    int e = write_id(kRunMachineId, id);
    if (e == 0) return;
    klog("cannot write %s: %s", kRunMachineId, std::strerror(e));
  }
  int e = write_machine_id_file(id);
  // A read-only root is the guest programs' limit, not the agent's.
  if (e == EROFS && root_read_only() && set_root_read_only(false) == 0) {
    e = write_machine_id_file(id);
    set_root_read_only(true);
  }
  if (e != 0) {
    klog("cannot write /etc/machine-id: %s", std::strerror(e));
    return;
  }
  if (!machine_id_bound) bind_run_copy(id);
}

}  // namespace

void apply_start_identity(const proto::Config& cfg) {
  set_clock(cfg.realtime_ns);
  reseed_rng(cfg.entropy);
  if (!cfg.hostname.empty()) ::sethostname(cfg.hostname.data(), cfg.hostname.size());
  set_mac(cfg.mac);
  set_machine_id(cfg.machine_id);
}

}  // namespace gondolin::agent
