#include "vm/accel.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gondolin/error.h"
#include "util/logging.h"
#include "util/paths.h"
#include "util/unique_fd.h"

namespace gondolin::vm {
namespace {

constexpr int kProbeTimeoutMs = 2000;

// Runs in a forked child: create a VM whose only instruction is HLT and run it.
// Exit 0 when KVM reports the HLT; a broken KVM hangs (we kill it) or fails.
[[noreturn]] void kvm_probe_child() {
  int kvm = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0 || ::ioctl(kvm, KVM_GET_API_VERSION, 0) != 12) ::_exit(2);
  int vm = ::ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) ::_exit(3);
  void* mem = ::mmap(nullptr, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) ::_exit(4);
  static_cast<unsigned char*>(mem)[0] = 0xf4;  // hlt
  kvm_userspace_memory_region region{};
  region.slot = 0;
  region.guest_phys_addr = 0x1000;
  region.memory_size = 0x1000;
  region.userspace_addr = reinterpret_cast<std::uint64_t>(mem);
  if (::ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) ::_exit(5);
  int vcpu = ::ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) ::_exit(6);
  int run_size = ::ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (run_size <= 0) ::_exit(7);
  auto* run = static_cast<kvm_run*>(
      ::mmap(nullptr, static_cast<std::size_t>(run_size), PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
  if (run == MAP_FAILED) ::_exit(8);
  kvm_sregs sregs{};
  if (::ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) ::_exit(9);
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  if (::ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) ::_exit(10);
  kvm_regs regs{};
  regs.rip = 0x1000;
  regs.rflags = 0x2;
  if (::ioctl(vcpu, KVM_SET_REGS, &regs) < 0) ::_exit(11);
  if (::ioctl(vcpu, KVM_RUN, 0) < 0) ::_exit(12);
  ::_exit(run->exit_reason == KVM_EXIT_HLT ? 0 : 13);
}

bool run_kvm_probe() {
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) kvm_probe_child();
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  bool done = false;
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    done = ::poll(&p, 1, kProbeTimeoutMs) == 1;
    ::close(pidfd);
  } else {
    for (int waited = 0; waited < kProbeTimeoutMs && !done; waited += 10) {
      int st;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        log().debug("kvm probe finished early");
        return WIFEXITED(st) && WEXITSTATUS(st) == 0;
      }
      ::usleep(10000);
    }
  }
  if (!done) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return done && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string boot_id() {
  std::ifstream f("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(f, id);
  return id;
}

// The probe costs a fork and, on a broken KVM, the full timeout: remember its
// verdict until the host reboots.
std::optional<bool> cached_probe(bool& cache_usable) {
  cache_usable = false;
  std::string id = boot_id();
  if (id.empty()) return std::nullopt;
  cache_usable = true;
  std::ifstream f(paths::cache_dir() / "kvm-probe");
  std::string cached_id, verdict;
  if (f >> cached_id >> verdict && cached_id == id) return verdict == "ok";
  return std::nullopt;
}

void store_probe(bool ok) {
  std::error_code ec;
  std::filesystem::create_directories(paths::cache_dir(), ec);
  std::ofstream f(paths::cache_dir() / "kvm-probe", std::ios::trunc);
  f << boot_id() << " " << (ok ? "ok" : "hang") << "\n";
}

}  // namespace

AccelFacts gather_accel_facts(bool run_probe) {
  AccelFacts facts;
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    facts.kvm_device_usable = true;
    ::close(fd);
  } else {
    facts.kvm_device_error = std::strerror(errno);
  }
  std::error_code ec;
  facts.pvm_host = std::filesystem::exists("/sys/module/kvm_pvm", ec);
  if (run_probe && facts.kvm_device_usable && !facts.pvm_host) {
    bool cache_usable = false;
    facts.probe_ran_guest = cached_probe(cache_usable);
    if (!facts.probe_ran_guest) {
      facts.probe_ran_guest = run_kvm_probe();
      if (cache_usable) store_probe(*facts.probe_ran_guest);
    }
  }
  return facts;
}

AccelChoice decide_accel(Accel requested, const AccelFacts& facts) {
  if (requested == Accel::Tcg) return {Accel::Tcg, "requested with --accel tcg"};
  if (requested == Accel::Kvm) {
    if (!facts.kvm_device_usable)
      throw Error(ErrorKind::Qemu, "--accel kvm: cannot open /dev/kvm (" + facts.kvm_device_error + ")");
    return {Accel::Kvm, facts.pvm_host ? "requested with --accel kvm (warning: this host is a nested PVM "
                                         "hypervisor, where KVM guests may hang)"
                                       : "requested with --accel kvm"};
  }
  if (!facts.kvm_device_usable) return {Accel::Tcg, "/dev/kvm is not usable (" + facts.kvm_device_error + ")"};
  if (facts.pvm_host) return {Accel::Tcg, "/dev/kvm is a nested PVM hypervisor (kvm_pvm), where guests hang"};
  if (facts.probe_ran_guest && !*facts.probe_ran_guest)
    return {Accel::Tcg, "a test guest did not run under KVM within 2 s"};
  return {Accel::Kvm, "KVM works on this host"};
}

AccelChoice choose_accel(Accel requested) {
  return decide_accel(requested, gather_accel_facts(requested == Accel::Auto));
}

std::optional<std::uint64_t> host_tsc_khz() {
  {
    std::ifstream f("/sys/devices/system/cpu/cpu0/tsc_freq_khz");
    std::uint64_t khz = 0;
    if (f >> khz && khz > 0) return khz;
  }
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("cpu MHz", 0) == 0) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      double mhz = std::strtod(line.c_str() + colon + 1, nullptr);
      if (mhz > 100) return static_cast<std::uint64_t>(std::llround(mhz * 1000.0));
    }
  }
  return std::nullopt;
}

}  // namespace gondolin::vm
