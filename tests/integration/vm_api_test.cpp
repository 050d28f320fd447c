// The C++ API against one shared VM.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

#include <memory>
#include <thread>

#include "gondolin/error.h"
#include "gondolin/vm.h"

using namespace gondolin;

class VmApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { vm_ = std::make_unique<Vm>(Vm::create({})); }
  static void TearDownTestSuite() { vm_.reset(); }
  static std::unique_ptr<Vm> vm_;
};
std::unique_ptr<Vm> VmApi::vm_;

TEST_F(VmApi, ReportsHowItBooted) {
  const VmInfo& info = vm_->info();
  EXPECT_EQ(info.image_name, "debian-base:latest");
  EXPECT_NE(info.accel, Accel::Auto);
  EXPECT_FALSE(info.accel_reason.empty());
  EXPECT_NE(info.kernel_release.find("amd64"), std::string::npos);
  EXPECT_GT(info.boot_seconds, 0);
  // QEMU's version, as QEMU itself reported it over QMP ("10.0.2").
  EXPECT_EQ(std::count(info.qemu_version.begin(), info.qemu_version.end(), '.'), 2) << info.qemu_version;
  EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(info.qemu_version.empty() ? 'x' : info.qemu_version[0])))
      << info.qemu_version;
  EXPECT_TRUE(vm_->running());
}

TEST_F(VmApi, ExecArgvAndShell) {
  auto r = vm_->exec(std::vector<std::string>{"echo", "a", "b"});
  EXPECT_EQ(r.stdout_data, "a b\n");
  auto s = vm_->exec(std::string("echo $0; exit 3"));
  EXPECT_EQ(s.stdout_data, "/bin/sh\n");
  EXPECT_EQ(s.exit_code, 3);
}

TEST_F(VmApi, EightConcurrentExecsInOneVm) {
  // A barrier: every job announces itself, then waits for all eight. Only if
  // they really run side by side do they all get past it.
  vm_->exec(std::string("rm -rf /tmp/barrier && mkdir /tmp/barrier"));
  std::vector<Process> procs;
  for (int i = 0; i < 8; ++i)
    procs.push_back(vm_->spawn(Command::shell(
        "touch /tmp/barrier/" + std::to_string(i) +
        "; n=0; while [ $(ls /tmp/barrier | wc -l) -lt 8 ]; do n=$((n+1)); [ $n -gt 600 ] && exit 99; sleep 0.1; done; "
        "echo job" +
        std::to_string(i) + "; exit " + std::to_string(i))));
  for (int i = 0; i < 8; ++i) {
    std::string out;
    while (auto c = procs[static_cast<std::size_t>(i)].read()) out += c->data;
    EXPECT_EQ(out, "job" + std::to_string(i) + "\n");
    EXPECT_EQ(procs[static_cast<std::size_t>(i)].wait().exit_code, i);
  }
}

TEST_F(VmApi, StreamingCallbacksAndStdin) {
  ExecOptions o;
  o.stdin_data = "line1\nline2\n";
  std::string seen;
  auto status = vm_->exec_streaming(Command::argv({"cat"}), o, [&](OutputStream s, std::string_view d) {
    if (s == OutputStream::Stdout) seen += d;
  });
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_EQ(seen, "line1\nline2\n");
}

TEST_F(VmApi, InteractiveProcess) {
  ExecOptions o;
  o.stdin = true;
  Process p = vm_->spawn(Command::argv({"sh", "-c", "read x; echo got:$x; read y; echo got:$y"}), o);
  p.write_stdin("one\n");
  auto first = p.read();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->data, "got:one\n");
  p.write_stdin("two\n");
  p.close_stdin();
  std::string rest;
  while (auto c = p.read()) rest += c->data;
  EXPECT_EQ(rest, "got:two\n");
  EXPECT_EQ(p.wait().exit_code, 0);
}

TEST_F(VmApi, SignalsReachTheProcessGroup) {
  Process p = vm_->spawn(Command::shell("trap 'echo caught; exit 7' TERM; echo ready; while :; do sleep 0.1; done"));
  auto ready = p.read();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->data, "ready\n");
  p.send_signal(SIGTERM);
  // The whole group gets it: when it lands during `sleep`, the shell also
  // reports its killed child ("Terminated") on stderr, which is fine.
  std::string out;
  while (auto c = p.read())
    if (c->stream == OutputStream::Stdout) out += c->data;
  EXPECT_EQ(out, "caught\n");
  EXPECT_EQ(p.wait().exit_code, 7);
}

TEST_F(VmApi, FileApi) {
  std::string blob;
  for (int i = 0; i < 300000; ++i) blob.push_back(static_cast<char>(i * 7));
  vm_->mkdir("/tmp/api/dir", true);
  vm_->write_file("/tmp/api/dir/blob", blob, 0600);
  EXPECT_EQ(vm_->read_file("/tmp/api/dir/blob"), blob);
  auto st = vm_->stat("/tmp/api/dir/blob");
  EXPECT_TRUE(st.is_regular());
  EXPECT_EQ(st.size, blob.size());
  EXPECT_EQ(st.mode & 0777, 0600u);
  vm_->append_file("/tmp/api/dir/blob", "tail");
  EXPECT_EQ(vm_->stat("/tmp/api/dir/blob").size, blob.size() + 4);
  vm_->rename("/tmp/api/dir/blob", "/tmp/api/dir/renamed");
  auto entries = vm_->list_dir("/tmp/api/dir");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].name, "renamed");
  // The guest sees what the host wrote.
  EXPECT_EQ(vm_->exec(std::string("wc -c < /tmp/api/dir/renamed")).stdout_data, std::to_string(blob.size() + 4) + "\n");
  vm_->remove("/tmp/api/dir/renamed");
  EXPECT_THROW(vm_->stat("/tmp/api/dir/renamed"), Error);
  try {
    vm_->read_file("/no/such/file");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "guest file /no/such/file: No such file or directory");
  }
  EXPECT_THROW(vm_->write_file("relative", "x"), Error);
}

TEST_F(VmApi, LargeDirectoryListing) {
  vm_->exec(std::string("mkdir -p /tmp/many && cd /tmp/many && seq -w 1 5000 | xargs touch"));
  auto entries = vm_->list_dir("/tmp/many");
  EXPECT_EQ(entries.size(), 5000u);
}

TEST_F(VmApi, BadRequestsAreRefusedOnTheHost) {
  EXPECT_THROW(vm_->exec(std::vector<std::string>{}), Error);
  ExecOptions o;
  o.env = {{"BAD=KEY", "x"}};
  EXPECT_THROW(vm_->exec(std::string("true"), o), Error);
  EXPECT_THROW(vm_->exec(std::vector<std::string>{std::string("a\0b", 3)}), Error);
}

TEST(VmLifecycle, CloseIsIdempotentAndExecAfterCloseFails) {
  Vm vm = Vm::create({});
  EXPECT_EQ(vm.exec(std::string("echo hi")).stdout_data, "hi\n");
  vm.close();
  vm.close();
  EXPECT_FALSE(vm.running());
  EXPECT_THROW(vm.exec(std::string("true")), Error);
}
