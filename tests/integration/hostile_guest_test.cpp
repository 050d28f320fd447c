// A guest that misbehaves with ordinary means: floods output nobody reads,
// forks without end, eats all its memory. The host stays up, bounded and
// responsive, and the user is told what happened.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "gondolin/vm.h"
#include "test_support.h"

using namespace gondolin;
using namespace gondolin::testing;

namespace {

long own_rss_kib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

}  // namespace

TEST(HostileGuest, UnreadFloodStaysBoundedAndDoesNotBlockOtherExecs) {
  Vm vm = Vm::create({});
  long before = own_rss_kib();
  // 10 GB it would write, if anyone read it. Nobody does.
  Process flood = vm.spawn(Command::shell("head -c 10000000000 /dev/zero"));
  std::this_thread::sleep_for(std::chrono::seconds(5));
  long during = own_rss_kib();
  EXPECT_LT(during - before, 32 * 1024) << "host memory grew by " << (during - before) << " KiB";
  // The flood holds its own window, not the channel: other commands still run.
  auto r = vm.exec(std::string("echo still-responsive"));
  EXPECT_EQ(r.stdout_data, "still-responsive\n");
  flood.send_signal(SIGKILL);
  EXPECT_EQ(flood.wait().signal, SIGKILL);
}

// The timeout ends a fork bomb within seconds of its deadline: the SIGKILL
// goes to the guest, and a guest too busy to comply within 3 s loses its VM.
TEST(HostileGuest, ForkBombIsContainedAndReported) {
  auto start = std::chrono::steady_clock::now();
  auto r = run_gondolin({"exec", "--timeout", "15", "--", "bash", "-c", "f() { f | f & }; f; sleep 600"});
  const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.exit_code, 124) << r.err;
  EXPECT_NE(r.err.find("timed out after 15 s"), std::string::npos) << r.err;
  // Boot (a few seconds under TCG) + 15 s + at most the 3 s grace, with room for a loaded machine.
  EXPECT_LT(took, 35.0) << "the fork bomb ran " << took - 15 << " s past its timeout (boot included)";
}

TEST(HostileGuest, OutOfMemoryKillsTheCommandNotTheVm) {
  VmOptions opts;
  opts.memory_mib = 256;
  Vm vm = Vm::create(opts);
  auto r = vm.exec(std::vector<std::string>{"python3", "-c", "a = []\nwhile True: a.append(bytearray(10 << 20))"});
  EXPECT_EQ(r.signal, SIGKILL) << r.stderr_data;
  EXPECT_EQ(r.shell_status(), 137);
  // The agent (PID 1) and the VM survive the OOM killer.
  EXPECT_EQ(vm.exec(std::string("echo alive")).stdout_data, "alive\n");
  EXPECT_GE(vm.guest_oom_kills(), 1u);
}

TEST(HostileGuest, TheCliSaysWhenTheGuestRanOutOfMemory) {
  auto r = gondolin::testing::run_gondolin(
      {"exec", "--memory", "256M", "--", "python3", "-c", "a = []\nwhile True: a.append(bytearray(10 << 20))"});
  EXPECT_EQ(r.exit_code, 137);
  EXPECT_NE(r.err.find("gondolin: the guest ran out of memory (256 MiB) and its kernel killed the command"),
            std::string::npos)
      << r.err;
}
