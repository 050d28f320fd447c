// QEMU never outlives gondolin, however gondolin ends.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <poll.h>

#include <fstream>
#include <sstream>
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

// `gondolin ARGS...` with its stdout readable line by line.
struct WatchedGondolin {
  pid_t pid = -1;
  int out = -1;
  std::string pending;

  explicit WatchedGondolin(const std::vector<std::string>& args) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    gondolin::SpawnSpec spec;
    spec.argv = {gondolin_binary().string()};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    spec.stdout_fd = p[1];
    spec.die_with_parent = false;
    pid = gondolin::spawn_process(spec);
    ::close(p[1]);
    out = p[0];
  }
  ~WatchedGondolin() {
    if (pid > 0 && process_alive(pid)) {
      ::kill(pid, SIGKILL);
      gondolin::wait_process(pid);
    }
    ::close(out);
  }
  // The next line of stdout, or "" after `limit`.
  std::string line(std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (pending.find('\n') == std::string::npos) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd pfd{out, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) != 1) return "";
      char buf[4096];
      const ssize_t n = ::read(out, buf, sizeof buf);
      if (n <= 0) return "";
      pending.append(buf, static_cast<std::size_t>(n));
    }
    std::string l = pending.substr(0, pending.find('\n'));
    pending.erase(0, l.size() + 1);
    return l;
  }
  // SIGTERM now; the seconds until it exited and its wait status.
  std::pair<double, int> terminate() {
    const auto start = std::chrono::steady_clock::now();
    ::kill(pid, SIGTERM);
    const int status = gondolin::wait_process(pid);
    pid = -1;
    return {std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), status};
  }
};

// CPU seconds (user + system) a process has used so far.
double cpu_seconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string f;
  long ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i)
    if (i == 14 || i == 15) ticks += std::stol(f);
  return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

void expect_stopped_by_sigterm(const std::pair<double, int>& r, const char* when) {
  EXPECT_LT(r.first, 1.5) << when << ": gondolin took " << r.first << " s to honour SIGTERM";
  ASSERT_TRUE(WIFEXITED(r.second)) << when << ": " << gondolin::describe_wait_status(r.second);
  EXPECT_EQ(WEXITSTATUS(r.second), 128 + SIGTERM) << when;
}

}  // namespace

// SIGTERM ends gondolin within about a second whatever the guest does: a
// command that ignores SIGTERM, and a VM still booting.
TEST(ProcessLifetime, SigtermEndsGondolinWithinASecondWhateverTheGuestDoes) {
  {
    WatchedGondolin g({"exec", "--", "sh", "-c", "trap '' TERM INT HUP; echo ready; while :; do sleep 1; done"});
    ASSERT_EQ(g.line(std::chrono::seconds(120)), "ready");
    expect_stopped_by_sigterm(g.terminate(), "a command that ignores SIGTERM");
  }
  {
    // --cold: a resumed template would have finished `true` by now.
    WatchedGondolin g({"exec", "--cold", "--", "true"});
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    expect_stopped_by_sigterm(g.terminate(), "while booting");
  }
}

// Hundreds of guest flows whose classification deadlines all pass while
// gondolin is paused (a loaded host, a debugger): after SIGCONT their sockets
// are all ready at once. The network stack serves them and goes back to
// sleep (it used to spin at 100% CPU forever), the guest sees every flow
// reset, and SIGTERM still works.
TEST(ProcessLifetime, HundredsOfFlowsReadyAtOnceAfterAPauseNeitherHangNorSpin) {
  const std::string script = std::string(kPythonOpenNonblocking) + R"(
import select
socks = []
for batch in range(4):
    new = open_nonblocking(80)
    pending = list(new)
    while pending:
        _, w, _ = select.select([], pending, [], 10)
        if not w:
            break
        pending = [s for s in pending if s not in w]
    socks += [s for s in new if s not in pending and s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0]
print("open", len(socks), flush=True)
ended = 0
deadline = time.time() + 60
for s in socks:
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        if s.recv(1) == b"":
            ended += 1
    except (ConnectionResetError, socket.timeout, OSError) as e:
        if not isinstance(e, socket.timeout):
            ended += 1
print("ended", ended, flush=True)
time.sleep(600)
)";
  WatchedGondolin g({"exec", "--", "sh", "-c", "ulimit -n 4096; exec python3 -c '" + script + "'"});
  const std::string opened = g.line(std::chrono::seconds(180));
  ASSERT_EQ(opened, "open 320");
  // Each flow waits 10 s for its first bytes: pause across all those deadlines.
  std::this_thread::sleep_for(std::chrono::seconds(7));
  ::kill(g.pid, SIGSTOP);
  std::this_thread::sleep_for(std::chrono::seconds(5));
  ::kill(g.pid, SIGCONT);
  EXPECT_EQ(g.line(std::chrono::seconds(60)), "ended 320");
  // Now idle: the stack must not be spinning.
  const double before = cpu_seconds(g.pid);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const double used = cpu_seconds(g.pid) - before;
  EXPECT_LT(used, 1.0) << "gondolin used " << used << " s of CPU in 3 s while its guest slept";
  expect_stopped_by_sigterm(g.terminate(), "after the flood");
}

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
