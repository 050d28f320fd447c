// The real guest agent, run on the host in --serve-fd mode and driven through
// the host's ControlClient over a socketpair: the whole exec path without a VM.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <future>
#include <thread>

#include "control/control_client.h"
#include "gondolin/exec.h"
#include "io_thread.h"
#include "util/subprocess.h"

using namespace gondolin;

namespace {

class AgentHarness {
 public:
  template <typename F>
  auto run_on_io(F&& f) {
    return io_.run(std::forward<F>(f));
  }

  AgentHarness() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    SpawnSpec spec;
    spec.argv = {GONDOLIN_AGENT_BINARY, "--serve-fd", "3"};
    spec.fds = {{sv[1], 3}};
    agent_pid_ = spawn_process(spec);
    ::close(sv[1]);
    std::promise<void> hello;
    auto hello_future = hello.get_future();
    run_on_io([&] {
      auto channel = std::make_shared<control::ControlChannel>(io_.io(), UniqueFd(sv[0]));
      client_ = std::make_shared<control::ControlClient>(io_.io(), channel);
      client_->start([&](const proto::Hello&) { hello.set_value(); }, [this](const std::string& why) { death_ = why; });
    });
    EXPECT_EQ(hello_future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  }

  ~AgentHarness() {
    run_on_io([&] { client_->request_shutdown(); });
    int status = wait_process(agent_pid_);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << describe_wait_status(status);
    run_on_io([&] { client_.reset(); });
  }

  Process spawn(std::vector<std::string> argv, const ExecOptions& o = {}) {
    proto::ExecStart req;
    req.argv = std::move(argv);
    for (const auto& [k, v] : o.env) req.env.push_back(k + "=" + v);
    req.cwd = o.cwd;
    req.flags = (o.pty ? proto::kExecFlagPty : 0) | (o.stdin ? proto::kExecFlagStdin : 0);
    if (o.user) req.run_as(o.user->uid, o.user->gid);
    auto state = run_on_io([&] { return client_->start_exec(req, o.timeout); });
    return detail::make_process(state);
  }

  ExecResult exec(std::vector<std::string> argv, const ExecOptions& o = {}) {
    Process p = spawn(std::move(argv), o);
    ExecResult r;
    while (auto c = p.read()) (c->stream == OutputStream::Stdout ? r.stdout_data : r.stderr_data) += c->data;
    static_cast<ExitStatus&>(r) = p.wait();
    return r;
  }

  std::string death_;

 private:
  test_support::IoThread io_;
  std::shared_ptr<control::ControlClient> client_;
  pid_t agent_pid_ = -1;
};

}  // namespace

TEST(AgentExec, ExitCodesAndSeparateStreams) {
  AgentHarness h;
  auto r = h.exec({"sh", "-c", "echo out; echo err >&2; exit 42"});
  EXPECT_EQ(r.exit_code, 42);
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.stdout_data, "out\n");
  EXPECT_EQ(r.stderr_data, "err\n");
  EXPECT_EQ(h.exec({"true"}).exit_code, 0);
  EXPECT_EQ(h.exec({"false"}).exit_code, 1);
}

// A child that starts and exits at once can report both in one epoll batch:
// the exit (SIGCHLD) first, then its start (status pipe). The agent once
// answered the second with a duplicate exec-started, which the host rightly
// treats as a protocol violation and ends the VM for.
TEST(AgentExec, ManyInstantExitsKeepTheProtocolIntact) {
  // Starting many at once makes the agent fork them all before it next waits,
  // so early children have exited by then: exactly that batch.
  AgentHarness h;
  for (int round = 0; round < 5; ++round) {
    std::vector<Process> started;
    for (int i = 0; i < 40; ++i) started.push_back(h.spawn({"echo", "x"}));
    for (auto& p : started) {
      auto s = p.wait();
      ASSERT_EQ(s.exit_code, 0) << "round " << round << ": " << s.start_error << h.death_;
    }
  }
  EXPECT_EQ(h.death_, "");
}

TEST(AgentExec, SignalDeath) {
  AgentHarness h;
  auto r = h.exec({"sh", "-c", "kill -TERM $$"});
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_EQ(r.shell_status(), 128 + SIGTERM);
}

TEST(AgentExec, StartFailuresMapToShellCodes) {
  AgentHarness h;
  auto missing = h.exec({"definitely-not-a-command-xyz"});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_NE(missing.start_error.find("No such file"), std::string::npos);
  char path[] = "/tmp/gondolin-noexec-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);  // mode 0600: not executable
  auto not_exec = h.exec({path});
  ::unlink(path);
  EXPECT_EQ(not_exec.exit_code, 126);
  ExecOptions o;
  o.cwd = "/nonexistent-dir-xyz";
  auto bad_cwd = h.exec({"true"}, o);
  EXPECT_EQ(bad_cwd.exit_code, 125);
  EXPECT_NE(bad_cwd.start_error.find("working directory"), std::string::npos);
}

TEST(AgentExec, BinarySafeOutput) {
  AgentHarness h;
  auto r = h.exec({"python3", "-c", "import sys; sys.stdout.buffer.write(bytes(range(256))*64)"});
  ASSERT_EQ(r.stdout_data.size(), 256u * 64);
  for (std::size_t i = 0; i < r.stdout_data.size(); ++i)
    ASSERT_EQ(static_cast<unsigned char>(r.stdout_data[i]), i % 256) << "at " << i;
}

TEST(AgentExec, StdinRoundTripWithNul) {
  AgentHarness h;
  ExecOptions o;
  o.stdin = true;
  Process p = h.spawn({"od", "-An", "-c"}, o);
  p.write_stdin(std::string("a\0b", 3));
  p.close_stdin();
  std::string out;
  while (auto c = p.read()) out += c->data;
  EXPECT_EQ(p.wait().exit_code, 0);
  EXPECT_NE(out.find("a  \\0   b"), std::string::npos) << out;
}

TEST(AgentExec, LargeStdinIsFlowControlled) {
  AgentHarness h;
  ExecOptions o;
  o.stdin = true;
  Process p = h.spawn({"wc", "-c"}, o);
  std::thread writer([&] {
    std::string chunk(1 << 20, 'x');
    for (int i = 0; i < 20; ++i) p.write_stdin(chunk);
    p.close_stdin();
  });
  std::string out;
  while (auto c = p.read()) out += c->data;
  writer.join();
  EXPECT_EQ(p.wait().exit_code, 0);
  EXPECT_EQ(std::stoul(out), 20u << 20);
}

TEST(AgentExec, SlowReaderThrottlesTheGuest) {
  // The command writes as fast as it can; we read nothing for a while. The
  // agent may only run one window ahead, so nearly all of it must wait in the
  // command's own pipe, not in our memory.
  AgentHarness h;
  Process p = h.spawn({"sh", "-c", "head -c 50000000 /dev/zero"});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::size_t total = 0;
  while (auto c = p.read()) total += c->data.size();
  EXPECT_EQ(total, 50000000u);
  EXPECT_EQ(p.wait().exit_code, 0);
}

TEST(AgentExec, EnvAndCwd) {
  AgentHarness h;
  ExecOptions o;
  o.env = {{"GREETING", "hello world"}};
  o.cwd = "/tmp";
  auto r = h.exec({"sh", "-c", "echo \"$GREETING\"; pwd"}, o);
  EXPECT_EQ(r.stdout_data, "hello world\n/tmp\n");
}

TEST(AgentExec, RunsAsTheRequestedUser) {
  AgentHarness h;
  ExecOptions o;
  o.user = GuestUser{65534, 65533};
  auto r = h.exec({"sh", "-c", "id -u; id -g; id -G"}, o);
  if (::geteuid() == 0) {
    EXPECT_EQ(r.exit_code, 0) << r.start_error;
    EXPECT_EQ(r.stdout_data, "65534\n65533\n65533\n");
  } else {
    EXPECT_EQ(r.exit_code, 125);
    EXPECT_NE(r.start_error.find("cannot switch to the command's user"), std::string::npos) << r.start_error;
  }
}

TEST(AgentExec, ConcurrentExecs) {
  AgentHarness h;
  std::vector<Process> procs;
  for (int i = 0; i < 8; ++i)
    procs.push_back(h.spawn({"sh", "-c", "sleep 0.2; echo " + std::to_string(i) + "; exit " + std::to_string(i)}));
  for (int i = 0; i < 8; ++i) {
    std::string out;
    while (auto c = procs[static_cast<std::size_t>(i)].read()) out += c->data;
    EXPECT_EQ(out, std::to_string(i) + "\n");
    EXPECT_EQ(procs[static_cast<std::size_t>(i)].wait().exit_code, i);
  }
}

TEST(AgentExec, PtyReportsTerminalAndSize) {
  AgentHarness h;
  ExecOptions o;
  o.pty = true;
  Process p = h.spawn({"sh", "-c", "stty size; test -t 0 && echo tty"}, o);
  p.resize(33, 101);
  std::string out;
  while (auto c = p.read()) out += c->data;
  EXPECT_EQ(p.wait().exit_code, 0);
  EXPECT_NE(out.find("tty"), std::string::npos) << out;
}

TEST(AgentExec, TimeoutKills) {
  AgentHarness h;
  ExecOptions o;
  o.timeout = std::chrono::milliseconds(300);
  auto r = h.exec({"sleep", "30"}, o);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
}

TEST(AgentExec, AbandonedProcessIsKilled) {
  AgentHarness h;
  {
    Process p = h.spawn({"sh", "-c", "yes"});
    auto first = p.read();
    ASSERT_TRUE(first);
  }  // dropping the Process kills the command and drains its output
  EXPECT_EQ(h.exec({"echo", "still alive"}).stdout_data, "still alive\n");
}
