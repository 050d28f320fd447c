// Host -> guest SSH from the host's real ssh, scp and rsync into a real guest:
// Vm::enable_ssh in this process and `gondolin ssh ID` from another.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gondolin/guest_ssh.h"
#include "gondolin/vm.h"
#include "ssh_test_harness.h"
#include "test_support.h"
#include "util/files.h"

namespace gondolin::ssh_test {
namespace {

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? (st.st_mode & 0777) : 0;
}

// The access's ssh command, then `extra` (options or the remote command).
ProgramResult host_ssh(const GuestSshAccess& a, std::vector<std::string> extra) {
  std::vector<std::string> argv = a.ssh_argv();
  argv.insert(argv.begin() + 1, {"-o", "BatchMode=yes"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run_program(argv);
}

// "ssh -i ... -o ..." without the destination: for scp -S / rsync -e.
std::string ssh_transport(const GuestSshAccess& a) {
  std::string out = "ssh -o BatchMode=yes";
  std::vector<std::string> argv = a.ssh_argv();
  for (std::size_t i = 1; i + 1 < argv.size(); ++i) out += " " + argv[i];
  return out;
}

TEST(GuestSsh, SshScpAndRsyncIntoARunningVm) {
  TempDir dir;
  Vm vm = Vm::create(VmOptions{});
  const GuestSshAccess a = vm.enable_ssh();
  EXPECT_EQ(vm.enable_ssh().port, a.port) << "idempotent";
  EXPECT_EQ(a.host, "127.0.0.1");
  const fs::path keys = fs::path(a.identity_file).parent_path();
  EXPECT_EQ(mode_of(keys), 0700u);
  EXPECT_EQ(mode_of(a.identity_file), 0600u);
  EXPECT_EQ(mode_of(a.known_hosts_file), 0600u);
  EXPECT_NE(a.config_snippet().find("Host " + a.alias + "\n"), std::string::npos);

  auto hello = host_ssh(a, {"echo hello from $(hostname) as $(id -u)"});
  ASSERT_EQ(hello.exit_code, 0) << hello.err;
  EXPECT_EQ(hello.out, "hello from gondolin as 0\n");

  // scp both ways (OpenSSH's scp speaks sftp), rsync over ssh.
  write_file_atomic(dir.path() / "in.txt", "from the host\n");
  fs::create_directories(dir.path() / "tree" / "sub");
  write_file_atomic(dir.path() / "tree" / "sub" / "f", "rsynced\n");
  const std::string dest = a.user + "@" + a.host;
  auto scp_in = run_program({"scp", "-q", "-o", "BatchMode=yes", "-i", a.identity_file, "-P", std::to_string(a.port),
                             "-o", "UserKnownHostsFile=" + a.known_hosts_file, (dir.path() / "in.txt").string(),
                             dest + ":/tmp/in.txt"});
  ASSERT_EQ(scp_in.exit_code, 0) << scp_in.err;
  EXPECT_EQ(vm.read_file("/tmp/in.txt"), "from the host\n");
  vm.write_file("/tmp/out.txt", "from the guest\n");
  auto scp_out = run_program({"scp", "-q", "-o", "BatchMode=yes", "-i", a.identity_file, "-P", std::to_string(a.port),
                              "-o", "UserKnownHostsFile=" + a.known_hosts_file, dest + ":/tmp/out.txt",
                              (dir.path() / "out.txt").string()});
  ASSERT_EQ(scp_out.exit_code, 0) << scp_out.err;
  EXPECT_EQ(read_file(dir.path() / "out.txt"), "from the guest\n");
  auto rsync =
      run_program({"rsync", "-a", "-e", ssh_transport(a), (dir.path() / "tree").string() + "/", dest + ":/tmp/tree/"});
  ASSERT_EQ(rsync.exit_code, 0) << rsync.err;
  EXPECT_EQ(vm.read_file("/tmp/tree/sub/f"), "rsynced\n");

  // Nothing listens in the guest; the only key the guest holds is its host key.
  auto listening = vm.exec(std::string("ss -Hltn | wc -l; ls /etc/ssh/ssh_host_* 2>/dev/null | wc -l"));
  EXPECT_EQ(listening.stdout_data, "0\n0\n") << listening.stderr_data;

  // Another process reaches the same session by id.
  auto cli = testing::run_gondolin({"ssh", vm.session_id().substr(0, 8), "--", "-o", "BatchMode=yes", "echo from-cli"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(cli.out, "from-cli\n");
  auto printed = testing::run_gondolin({"ssh", vm.session_id(), "--print"});
  EXPECT_NE(printed.out.find(a.command_line()), std::string::npos) << printed.out;

  vm.close();
  EXPECT_FALSE(fs::exists(keys)) << "the keys go with the VM";
  EXPECT_NE(host_ssh(a, {"true"}).exit_code, 0);
}

TEST(GuestSsh, AnUnknownSessionIsOneLine) {
  auto r = testing::run_gondolin({"ssh", "no-such-session"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
}  // namespace gondolin::ssh_test
