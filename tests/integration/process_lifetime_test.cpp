// QEMU never outlives gondolin, however gondolin ends.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "test_support.h"
#include "util/subprocess.h"

using namespace gondolin::testing;

namespace {

// Starts `gondolin exec -- sleep 600` and waits until its QEMU child exists.
std::pair<pid_t, pid_t> start_gondolin_with_qemu() {
  gondolin::SpawnSpec spec;
  spec.argv = {gondolin_binary().string(), "exec", "--", "sleep", "600"};
  spec.die_with_parent = false;
  pid_t pid = gondolin::spawn_process(spec);
  for (int i = 0; i < 600; ++i) {
    for (pid_t child : child_pids(pid)) {
      std::ifstream comm("/proc/" + std::to_string(child) + "/comm");
      std::string name;
      std::getline(comm, name);
      if (name.rfind("qemu", 0) == 0) return {pid, child};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return {pid, -1};
}

bool gone_within(pid_t pid, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_alive(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace

TEST(ProcessLifetime, SigkillOfGondolinTakesQemuDown) {
  auto [gondolin, qemu] = start_gondolin_with_qemu();
  ASSERT_GT(qemu, 0) << "no QEMU child appeared";
  ::kill(gondolin, SIGKILL);
  gondolin::wait_process(gondolin);
  EXPECT_TRUE(gone_within(qemu, std::chrono::seconds(5))) << "QEMU " << qemu << " survived gondolin";
}

TEST(ProcessLifetime, SigtermIsForwardedAndEverythingExits) {
  auto [gondolin, qemu] = start_gondolin_with_qemu();
  ASSERT_GT(qemu, 0);
  // Give the guest command time to start, then ask gondolin to stop.
  std::this_thread::sleep_for(std::chrono::seconds(8));
  ::kill(gondolin, SIGTERM);
  int status = gondolin::wait_process(gondolin);
  ASSERT_TRUE(WIFEXITED(status)) << gondolin::describe_wait_status(status);
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << "the guest's sleep died of the forwarded SIGTERM";
  EXPECT_TRUE(gone_within(qemu, std::chrono::seconds(5)));
}
