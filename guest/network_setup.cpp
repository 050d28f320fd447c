#include "network_setup.h"

#include "boot.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace gondolin::agent {
namespace {

constexpr const char* kBusybox = "/bin/busybox";
// In the initramfs (see DhcpRun).
constexpr const char* kScriptPath = "/udhcpc.script";
constexpr auto kDhcpTimeout = std::chrono::seconds(8);

constexpr const char* kLeaseName = "dhcp.lease";

// udhcpc runs this with "deconfig", then "bound" and the lease in its
// environment. It only writes the lease down: the agent applies it with a few
// ioctls, where a script calling `ip` would pay for half a dozen program
// starts (each tens of milliseconds under TCG).
constexpr const char* kScript = R"(#!/bin/busybox sh
# Hands the DHCP lease to gondolin's agent, which applies it (run by udhcpc).
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
set -- $router
echo "$ip ${mask:-24} ${1:-0.0.0.0} ${mtu:-0} $dns" > /dhcp.lease
)";

bool write_script() {
  int fd = ::open(kScriptPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
  if (fd < 0) return false;
  const std::size_t len = std::strlen(kScript);
  bool ok = ::write(fd, kScript, len) == static_cast<ssize_t>(len);
  ::close(fd);
  return ok;
}

bool wait_for_interface(const char* name, std::chrono::milliseconds timeout) {
  return wait_for_path(std::string("/sys/class/net/") + name, timeout);
}

sockaddr ipv4_sockaddr(in_addr a) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr = a;
  sockaddr out{};
  std::memcpy(&out, &sin, sizeof sin);
  return out;
}

class Ioctls {
 public:
  Ioctls() : fd_(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {}
  ~Ioctls() {
    if (fd_ >= 0) ::close(fd_);
  }
  Ioctls(const Ioctls&) = delete;
  Ioctls& operator=(const Ioctls&) = delete;

  bool link_up(const char* ifname) {
    ifreq ifr = request(ifname);
    if (::ioctl(fd_, SIOCGIFFLAGS, &ifr) != 0) return false;
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    return ::ioctl(fd_, SIOCSIFFLAGS, &ifr) == 0;
  }
  bool set_mtu(const char* ifname, int mtu) {
    ifreq ifr = request(ifname);
    ifr.ifr_mtu = mtu;
    return ::ioctl(fd_, SIOCSIFMTU, &ifr) == 0;
  }
  bool set_address(const char* ifname, in_addr address, in_addr netmask) {
    ifreq ifr = request(ifname);
    ifr.ifr_addr = ipv4_sockaddr(address);
    if (::ioctl(fd_, SIOCSIFADDR, &ifr) != 0) return false;
    ifr.ifr_netmask = ipv4_sockaddr(netmask);
    return ::ioctl(fd_, SIOCSIFNETMASK, &ifr) == 0;
  }
  bool add_default_route(const char* ifname, in_addr gateway) {
    rtentry rt{};
    rt.rt_dst = ipv4_sockaddr(in_addr{});
    rt.rt_genmask = ipv4_sockaddr(in_addr{});
    rt.rt_gateway = ipv4_sockaddr(gateway);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    rt.rt_dev = const_cast<char*>(ifname);
    return ::ioctl(fd_, SIOCADDRT, &rt) == 0 || errno == EEXIST;
  }

 private:
  static ifreq request(const char* ifname) {
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    return ifr;
  }
  int fd_;
};

// "IP PREFIXLEN ROUTER MTU DNS..." as the script wrote it.
std::string apply_lease(int initramfs_root, const char* ifname) {
  int lease_fd = ::openat(initramfs_root, kLeaseName, O_RDONLY | O_CLOEXEC);
  if (lease_fd < 0) return "udhcpc left no lease";
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(lease_fd, buf, sizeof buf)) > 0 && text.size() < 4096;)
    text.append(buf, static_cast<std::size_t>(n));
  ::close(lease_fd);
  std::istringstream f(text);
  std::string ip, router, dns_server;
  int prefix = 0, mtu = 0;
  if (!(f >> ip >> prefix >> router >> mtu)) return "udhcpc left no usable lease";
  in_addr address{}, gateway{};
  if (::inet_pton(AF_INET, ip.c_str(), &address) != 1 || prefix < 1 || prefix > 30) return "bad lease address " + ip;
  in_addr netmask{};
  netmask.s_addr = htonl(~((1u << (32 - prefix)) - 1));
  Ioctls io;
  if (mtu >= 576 && mtu <= 65535 && !io.set_mtu(ifname, mtu))
    return std::string("cannot set MTU: ") + std::strerror(errno);
  if (!io.set_address(ifname, address, netmask)) return std::string("cannot set address: ") + std::strerror(errno);
  if (::inet_pton(AF_INET, router.c_str(), &gateway) == 1 && gateway.s_addr != 0 &&
      !io.add_default_route(ifname, gateway))
    return std::string("cannot add the default route: ") + std::strerror(errno);
  std::ostringstream resolv;
  while (f >> dns_server) resolv << "nameserver " << dns_server << "\n";
  ::unlink("/etc/resolv.conf");  // may be a symlink into a resolver daemon's directory
  std::ofstream out("/etc/resolv.conf");
  out << resolv.str();
  return out ? "" : "cannot write /etc/resolv.conf";
}

}  // namespace

DhcpRun start_dhcp() {
  DhcpRun run;
  if (!wait_for_interface("eth0", std::chrono::seconds(2))) {
    run.error = "eth0 did not appear";
    return run;
  }
  if (!write_script()) {
    run.error = std::string("cannot write ") + kScriptPath + ": " + std::strerror(errno);
    return run;
  }
  if (!Ioctls().link_up("eth0")) {
    run.error = std::string("cannot bring eth0 up: ") + std::strerror(errno);
    return run;
  }
  run.initramfs_root = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid < 0) {
    run.error = std::string("fork: ") + std::strerror(errno);
    return run;
  }
  if (pid == 0) {
    // No /dev yet to point stdio at: close it instead.
    for (int fd = 0; fd < 3; ++fd) ::close(fd);
    // -f foreground, -q quit once bound, -n give up instead of backgrounding;
    // discover at once and retry every second.
    const char* argv[] = {"udhcpc", "-i", "eth0", "-f",  "-q", "-n",        "-t",   "6",
                          "-T",     "1",  "-O",   "mtu", "-s", kScriptPath, nullptr};
    ::execv(kBusybox, const_cast<char* const*>(argv));
    ::_exit(127);
  }
  run.pid = pid;
  return run;
}

std::string finish_dhcp(DhcpRun& run) {
  if (run.pid < 0) return run.error.empty() ? "udhcpc was not started" : run.error;
  auto deadline = std::chrono::steady_clock::now() + kDhcpTimeout;
  std::string result;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(run.pid, &status, WNOHANG);
    if (r == run.pid) {
      result = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? apply_lease(run.initramfs_root, "eth0")
                                                             : "udhcpc failed (status " + std::to_string(status) + ")";
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(run.pid, SIGKILL);
      ::waitpid(run.pid, &status, 0);
      result = "udhcpc got no lease in time";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  run.pid = -1;
  if (run.initramfs_root >= 0) ::close(run.initramfs_root);
  run.initramfs_root = -1;
  return result;
}

}  // namespace gondolin::agent
