// `gondolin exec` as a user sees it: real VMs under TCG, the real binary.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "test_support.h"
#include "util/subprocess.h"
#include "util/unique_fd.h"

using namespace gondolin::testing;

TEST(CliExec, ExitCodesArePropagated) {
  EXPECT_EQ(run_gondolin({"exec", "--", "true"}).exit_code, 0);
  EXPECT_EQ(run_gondolin({"exec", "--", "false"}).exit_code, 1);
  EXPECT_EQ(run_gondolin({"exec", "-c", "exit 42"}).exit_code, 42);
}

TEST(CliExec, SignalDeathIs128PlusN) {
  auto r = run_gondolin({"exec", "--", "sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(r.exit_code, 128 + 9);
  auto r2 = run_gondolin({"exec", "--", "sh", "-c", "kill -TERM $$"});
  EXPECT_EQ(r2.exit_code, 128 + 15);
}

TEST(CliExec, StdoutAndStderrStayApart) {
  auto r = run_gondolin({"exec", "--", "sh", "-c", "echo to-out; echo to-err >&2; echo more-out"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "to-out\nmore-out\n");
  EXPECT_EQ(r.err, "to-err\n");
}

TEST(CliExec, ArgvIsPassedVerbatimAndShellFormWorks) {
  auto r = run_gondolin({"exec", "--", "printf", "[%s]", "a b", "", "$HOME", "*"});
  EXPECT_EQ(r.out, "[a b][][$HOME][*]");
  auto s = run_gondolin({"exec", "-c", "echo $((6*7)) | tr 4 x"});
  EXPECT_EQ(s.out, "x2\n");
  auto no_dashes = run_gondolin({"exec", "ls", "-d", "/etc"});
  EXPECT_EQ(no_dashes.out, "/etc\n");
}

TEST(CliExec, AllByteValuesRoundTrip) {
  auto r = run_gondolin({"exec", "--", "python3", "-c",
                         "import sys; sys.stdout.buffer.write(bytes(range(256))*1000); "
                         "sys.stderr.buffer.write(bytes(range(255,-1,-1)))"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(r.out.size(), 256000u);
  for (std::size_t i = 0; i < r.out.size(); ++i) ASSERT_EQ(static_cast<unsigned char>(r.out[i]), i % 256) << i;
  ASSERT_EQ(r.err.size(), 256u);
  for (std::size_t i = 0; i < 256; ++i) ASSERT_EQ(static_cast<unsigned char>(r.err[i]), 255 - i);
}

TEST(CliExec, StdinIsForwardedWithDashI) {
  CliOptions o;
  o.stdin_data = std::string("a\0b", 3);
  auto r = run_gondolin({"exec", "-i", "--", "od", "-c"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "0000000   a  \\0   b\n0000003\n");
  // Without -i the command's stdin is empty.
  auto no_i = run_gondolin({"exec", "--", "wc", "-c"}, o);
  EXPECT_EQ(no_i.out, "0\n");
}

TEST(CliExec, LargeStdinStreams) {
  CliOptions o;
  o.stdin_data = std::string(30 << 20, 'z');
  auto r = run_gondolin({"exec", "-i", "--", "sh", "-c", "wc -c; true"}, o);
  EXPECT_EQ(r.out, std::to_string(30 << 20) + "\n");
}

TEST(CliExec, EnvironmentAndWorkingDirectory) {
  auto r = run_gondolin({"exec", "-e", "GREETING=hello world", "-e", "EMPTY=", "-w", "/usr/share", "--", "sh", "-c",
                         "echo \"$GREETING|$EMPTY|$(pwd)|$HOME|$PATH\""});
  EXPECT_EQ(r.out, "hello world||/usr/share|/root|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
  auto bad = run_gondolin({"exec", "-w", "/does/not/exist", "--", "true"});
  EXPECT_EQ(bad.exit_code, 125);
  EXPECT_NE(bad.err.find("working directory"), std::string::npos) << bad.err;
}

TEST(CliExec, NotFoundAndNotExecutable) {
  auto nf = run_gondolin({"exec", "--", "no-such-program-xyz"});
  EXPECT_EQ(nf.exit_code, 127);
  EXPECT_EQ(nf.err, "gondolin: cannot execute 'no-such-program-xyz': No such file or directory\n");
  auto ne = run_gondolin({"exec", "--", "/etc/os-release"});
  EXPECT_EQ(ne.exit_code, 126);
  EXPECT_NE(ne.err.find("Permission denied"), std::string::npos);
}

TEST(CliExec, TimeoutKillsAndExits124) {
  auto start = std::chrono::steady_clock::now();
  auto r = run_gondolin({"exec", "--timeout", "2", "--", "sleep", "600"});
  EXPECT_EQ(r.exit_code, 124);
  EXPECT_NE(r.err.find("timed out after 2 s"), std::string::npos) << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
}

// A guest that reboots or powers off ends the VM (QEMU runs with
// -no-reboot): the user gets one line saying so and a failure status, at
// once, with a mount of either transport in place.
TEST(CliExec, GuestRebootOrPowerOffEndsTheVmWithOneLine) {
  for (const char* how : {"b", "o"}) {
    for (const char* transport : {"serial", "virtiofs"}) {
      SCOPED_TRACE(std::string(how) + " " + transport);
      auto start = std::chrono::steady_clock::now();
      auto r = run_gondolin({"exec", "--mount-memfs", std::string("/m:transport=") + transport, "--", "sh", "-c",
                             std::string("echo x > /m/f; echo ") + how + " > /proc/sysrq-trigger; sleep 600"});
      EXPECT_EQ(r.exit_code, 125);
      // Which side notices first (the control channel's end or QEMU's exit)
      // is a race; either way the line says what happened.
      EXPECT_TRUE(r.err ==
                      "gondolin: the guest closed the control channel (it rebooted, powered off or crashed; a "
                      "gondolin VM does not reboot)\n" ||
                  r.err == "gondolin: the guest rebooted or powered off (a gondolin VM does not reboot)\n")
          << r.err;
      EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
    }
  }
}

TEST(CliExec, ImageIsUnchangedAndWritesVanish) {
  auto w = run_gondolin({"exec", "-c", "echo scratch > /etc/gondolin-test-file && cat /etc/gondolin-test-file"});
  EXPECT_EQ(w.out, "scratch\n");
  auto r = run_gondolin({"exec", "-c", "test -e /etc/gondolin-test-file && echo present || echo absent"});
  EXPECT_EQ(r.out, "absent\n");
}

TEST(CliExec, GuestHasTheBasics) {
  auto r =
      run_gondolin({"exec", "-c",
                    "command -v bash curl git ssh python3 >/dev/null && . /etc/os-release && echo $ID $VERSION_ID && "
                    "test -c /dev/null && test -d /dev/pts && test -w /tmp && hostname"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "debian 12\ngondolin\n");
}

TEST(CliExec, GuestClockIsSetFromTheHost) {
  auto r = run_gondolin({"exec", "--", "date", "+%s"});
  ASSERT_EQ(r.exit_code, 0);
  long guest = std::stol(r.out);
  long host = static_cast<long>(std::time(nullptr));
  EXPECT_LT(std::labs(host - guest), 30);
}

TEST(CliExec, StdoutOf200MegabytesStreamsWithBoundedHostMemory) {
  // gondolin writes into a pipe that we drain slowly; its own peak RSS must
  // stay small however much the guest produces.
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  gondolin::UniqueFd out_r(out[0]), out_w(out[1]);
  gondolin::SpawnSpec spec;
  spec.argv = {gondolin_binary().string(), "exec", "--", "sh", "-c", "head -c 200000000 /dev/zero"};
  spec.stdout_fd = out_w.get();
  pid_t pid = gondolin::spawn_process(spec);
  out_w.reset();
  std::size_t total = 0;
  long peak = 0;
  char buf[65536];
  auto last_sample = std::chrono::steady_clock::now();
  for (;;) {
    ssize_t n = ::read(out_r.get(), buf, sizeof buf);
    if (n <= 0) break;
    total += static_cast<std::size_t>(n);
    if (std::chrono::steady_clock::now() - last_sample > std::chrono::milliseconds(100)) {
      if (auto rss = peak_rss_kib(pid)) peak = std::max(peak, *rss);
      last_sample = std::chrono::steady_clock::now();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a deliberately slow reader
    }
  }
  if (auto rss = peak_rss_kib(pid)) peak = std::max(peak, *rss);
  int status = gondolin::wait_process(pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(total, 200000000u);
  EXPECT_GT(peak, 0);
  EXPECT_LT(peak, 64 * 1024) << "gondolin's peak RSS in KiB";
}

TEST(CliExec, ClosedStdoutEndsTheGuestWriterWithSigpipe) {
  // `gondolin exec -- yes | head -c 10`: when our reader goes away, the guest's
  // writer gets SIGPIPE, as it would on the host, instead of running forever.
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  gondolin::UniqueFd out_r(out[0]), out_w(out[1]);
  gondolin::SpawnSpec spec;
  spec.argv = {gondolin_binary().string(), "exec", "--", "yes"};
  spec.stdout_fd = out_w.get();
  pid_t pid = gondolin::spawn_process(spec);
  out_w.reset();
  char buf[10];
  ASSERT_EQ(::read(out_r.get(), buf, sizeof buf), static_cast<ssize_t>(sizeof buf));
  out_r.reset();
  int status = gondolin::wait_process(pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGPIPE);
}
