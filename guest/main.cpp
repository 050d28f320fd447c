// gondolin-agent: PID 1 of the guest.
//
// As PID 1 it boots the guest (mounts, modules, overlay root, switch_root),
// then serves the control port until the host asks it to power off. Started
// with `--serve-fd N` instead, it serves an already open descriptor; the host
// test suite uses that to exercise the protocol without a VM.
#include <sys/reboot.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "agent.h"
#include "boot.h"
#include "control_port.h"
#include "init_extra.h"
#include "klog.h"
#include "network_setup.h"
#include "proto/control_protocol.h"
#include "root_layers.h"

using namespace gondolin::agent;

namespace {

[[noreturn]] void halt(const char* why) {
  klog("fatal: %s", why);
  ::sync();
  ::reboot(RB_POWER_OFF);
  ::_exit(1);
}

int run_as_init() {
  std::uint64_t start_mono = monotonic_ns();
  std::uint64_t uptime = boottime_ns();
  BootResult boot = boot_as_init();
  if (!boot.ok) halt(boot.error.c_str());
  std::uint64_t runtime_start = monotonic_ns();
  mount_runtime_filesystems();
  char runtime[48];
  std::snprintf(runtime, sizeof runtime, " runtime-fs=%.3fs",
                static_cast<double>(monotonic_ns() - runtime_start) / 1e9);
  std::string net_report;
  if (boot.network) {
    // Before the agent answers, so the first command already has a network.
    std::uint64_t net_start = monotonic_ns();
    std::string net_error = finish_dhcp(boot.dhcp);
    if (!net_error.empty()) klog("network: %s", net_error.c_str());
    char net[64];
    std::snprintf(net, sizeof net, " dhcp=%.3fs%s", static_cast<double>(monotonic_ns() - net_start) / 1e9,
                  net_error.empty() ? "" : "(failed)");
    net_report = net;
  }
  // After the network (a daemon may need it), before the first command.
  std::string init_extra_error = run_init_extra();
  if (!init_extra_error.empty()) klog("init_extra: %s", init_extra_error.c_str());
  if (boot.read_only_root) {
    if (int e = set_root_read_only(true)) klog("cannot make / read-only: %s", std::strerror(e));
  }
  int port = open_named_port(gondolin::proto::kControlPortName, std::chrono::seconds(10));
  if (port < 0) halt("control port missing");
  AgentIdentity id;
  id.is_init = true;
  id.uptime_at_start_ns = uptime;
  id.init_duration_ns = monotonic_ns() - start_mono;
  id.boot_report = boot.report + runtime + net_report;
  id.init_extra_error = init_extra_error;
  Agent agent(port, id);
  agent.run();
  halt("control loop ended");
}

}  // namespace

int main(int argc, char** argv) {
  if (::getpid() == 1) return run_as_init();
  if (argc == 3 && std::strcmp(argv[1], "--serve-fd") == 0) {
    int fd = std::atoi(argv[2]);
    Agent agent(fd, AgentIdentity{});
    agent.run();
    return 0;
  }
  static const char usage[] = "usage: gondolin-agent --serve-fd FD (runs as PID 1 inside a gondolin VM)\n";
  ssize_t ignored = ::write(STDERR_FILENO, usage, sizeof usage - 1);
  (void)ignored;
  return 2;
}
