// `gondolin bash` driven through a real terminal (tmux): raw mode, resize,
// Ctrl-C, exit status, terminal restored.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "gondolin/session.h"
#include "test_support.h"
#include "util/subprocess.h"

using namespace gondolin::testing;

namespace {

class Tmux {
 public:
  Tmux(const std::string& command, int cols, int rows) : name_("gondolin-test-" + std::to_string(::getpid())) {
    host_sh("tmux kill-session -t " + name_ + " 2>/dev/null; tmux new-session -d -s " + name_ + " -x " +
            std::to_string(cols) + " -y " + std::to_string(rows) + " '" + command + "'");
  }
  ~Tmux() { host_sh("tmux kill-session -t " + name_ + " 2>/dev/null || true"); }

  void keys(const std::string& keys) { host_sh("tmux send-keys -t " + name_ + " " + keys); }
  void type(const std::string& text) { host_sh("tmux send-keys -t " + name_ + " -l '" + text + "'"); }
  std::string screen() { return host_sh("tmux capture-pane -p -t " + name_ + " 2>/dev/null || true"); }
  void resize(int cols, int rows) {
    host_sh("tmux resize-window -t " + name_ + " -x " + std::to_string(cols) + " -y " + std::to_string(rows));
  }
  bool alive() { return host_sh("tmux has-session -t " + name_ + " 2>/dev/null && echo yes || true") == "yes\n"; }

  // Polls the screen until `needle` shows up.
  bool wait_for(const std::string& needle, std::chrono::seconds limit = std::chrono::seconds(120)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (screen().find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

 private:
  std::string name_;
};

// What the tmux command wrote to `path` (gondolin's exit status), waiting for it.
std::string wait_for_status(const std::string& path, std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::string status;
  while (std::chrono::steady_clock::now() < deadline && status.empty()) {
    std::ifstream f(path);
    std::getline(f, status);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return status;
}

}  // namespace

TEST(Tty, InteractiveBashInATerminal) {
  TempDir tmp;
  std::string status_file = (tmp.path() / "status").string();
  std::string stty_file = (tmp.path() / "stty").string();
  // After gondolin exits, record its status and the host terminal's mode.
  std::string cmd =
      gondolin_binary().string() + " bash; echo $? > " + status_file + "; stty -a > " + stty_file + "; sleep 30";
  Tmux t(cmd, 100, 30);
  ASSERT_TRUE(t.wait_for("root@gondolin")) << t.screen();

  t.type("echo $((6*7))");
  t.keys("Enter");
  ASSERT_TRUE(t.wait_for("\n42")) << t.screen();

  t.type("stty size");
  t.keys("Enter");
  ASSERT_TRUE(t.wait_for("30 100")) << t.screen();
  t.resize(120, 40);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  t.type("stty size");
  t.keys("Enter");
  ASSERT_TRUE(t.wait_for("40 120")) << t.screen();

  // Ctrl-C reaches the guest's foreground job, not gondolin.
  t.type("sleep 600");
  t.keys("Enter");
  std::this_thread::sleep_for(std::chrono::seconds(1));
  t.keys("C-c");
  t.type("echo after-$((1+1))");
  t.keys("Enter");
  ASSERT_TRUE(t.wait_for("after-2")) << t.screen();

  t.type("exit 7");
  t.keys("Enter");
  EXPECT_EQ(wait_for_status(status_file), "7");
  // The host terminal is back in cooked mode with echo.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::ifstream f(stty_file);
  std::string modes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(modes.find(" icanon"), std::string::npos) << modes;
  EXPECT_NE(modes.find(" echo "), std::string::npos) << modes;
}

TEST(Tty, AttachedShellInATerminal) {
  // The owner: a plain exec that keeps the VM alive.
  gondolin::SpawnSpec spec;
  spec.argv = {gondolin_binary().string(), "exec", "--", "sh", "-c", "echo owner-was-here > /tmp/mark; sleep 600"};
  pid_t owner = gondolin::spawn_process(spec);
  std::string id;
  for (int i = 0; i < 600 && id.empty(); ++i) {
    for (const auto& s : gondolin::Session::list())
      if (s.pid == owner) id = s.id;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(id.empty());
  TempDir tmp;
  std::string status_file = (tmp.path() / "status").string();
  Tmux t(gondolin_binary().string() + " attach " + id.substr(0, 8) + "; echo $? > " + status_file + "; sleep 30", 90,
         25);
  ASSERT_TRUE(t.wait_for("root@gondolin")) << t.screen();
  t.type("cat /tmp/mark; echo $((6*7))");
  t.keys("Enter");
  ASSERT_TRUE(t.wait_for("owner-was-here")) << t.screen();
  ASSERT_TRUE(t.wait_for("\n42")) << t.screen();
  t.type("stty size");
  t.keys("Enter");
  ASSERT_TRUE(t.wait_for("25 90")) << t.screen();
  t.resize(100, 33);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  t.type("stty size");
  t.keys("Enter");
  ASSERT_TRUE(t.wait_for("33 100")) << t.screen();
  t.type("exit 3");
  t.keys("Enter");
  EXPECT_EQ(wait_for_status(status_file), "3");
  // Leaving the attached shell left the session running.
  EXPECT_TRUE(process_alive(owner));

  // Ctrl-] detaches: gondolin says so and exits 130, the session runs on.
  std::filesystem::remove(status_file);
  Tmux d(gondolin_binary().string() + " attach --cwd /tmp " + id.substr(0, 8) + "; echo $? > " + status_file +
             "; sleep 30",
         90, 25);
  ASSERT_TRUE(d.wait_for("root@gondolin")) << d.screen();
  d.type("pwd");
  d.keys("Enter");
  ASSERT_TRUE(d.wait_for("\n/tmp")) << d.screen();
  d.keys("C-]");
  ASSERT_TRUE(d.wait_for("[gondolin] detached", std::chrono::seconds(30))) << d.screen();
  EXPECT_EQ(wait_for_status(status_file), "130");
  EXPECT_TRUE(process_alive(owner));
  // Without a terminal, attach reads stdin to its end instead of waiting on a pty.
  auto piped = run_gondolin({"attach", id.substr(0, 8)},
                            CliOptions{"cat /tmp/mark; exit 4\n", {}, {}, std::chrono::seconds(60), {}});
  EXPECT_EQ(piped.exit_code, 4) << piped.err;
  EXPECT_EQ(piped.out, "owner-was-here\n");
  ::kill(owner, SIGKILL);
  gondolin::wait_process(owner);
}

TEST(Tty, BashRunsTheGivenCommandOnAPty) {
  TempDir tmp;
  std::string status_file = (tmp.path() / "status").string();
  Tmux t(gondolin_binary().string() +
             " bash --cwd /tmp -- sh -c \"pwd; tty; python3 -c \\\"print(6*7)\\\"; exit 5\"; echo $? > " + status_file +
             "; sleep 30",
         100, 30);
  ASSERT_TRUE(t.wait_for("\n42")) << t.screen();
  std::string screen = t.screen();
  EXPECT_NE(screen.find("/tmp\n/dev/pts/"), std::string::npos) << screen;
  EXPECT_EQ(wait_for_status(status_file), "5");
}

TEST(Tty, BashWithoutATerminalReadsStdinToItsEnd) {
  // Nothing to read: the login shell sees EOF and ends.
  auto empty = run_gondolin({"bash"}, CliOptions{"", {}, {}, std::chrono::seconds(120), {}});
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  // A script on stdin runs in bash, without a terminal.
  auto script = run_gondolin(
      {"bash"}, CliOptions{"echo \"$BASH_VERSION\" | cut -c1; tty; exit 4\n", {}, {}, std::chrono::seconds(120), {}});
  EXPECT_EQ(script.exit_code, 4) << script.err;
  EXPECT_EQ(script.out, "5\nnot a tty\n");
  // A command after -- gets stdin too.
  auto command = run_gondolin({"bash", "--", "python3", "-c", "import sys; print(6*int(sys.stdin.read()))"},
                              CliOptions{"7\n", {}, {}, std::chrono::seconds(120), {}});
  EXPECT_EQ(command.exit_code, 0) << command.err;
  EXPECT_EQ(command.out, "42\n");
}
