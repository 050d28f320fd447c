// SSH egress from a real guest: the guest's own ssh and git talk to a name,
// gondolin's proxy terminates them and opens the upstream session to a real
// OpenSSH server on host loopback with a key only the host holds.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ssh_test_harness.h"
#include "test_support.h"
#include "util/files.h"

namespace gondolin::ssh_test {
namespace {

constexpr const char* kHost = "git.example.test";

class SshGuest : public ::testing::Test {
 protected:
  void SetUp() override {
    sshd_ = std::make_unique<OpenSshServer>(dir_.path() / "sshd");
    known_hosts_ = dir_.path() / "upstream_known_hosts";
    write_known_hosts(sshd_->host_key_line());
    repo_ = dir_.path() / "repos" / "project.git";
    fs::create_directories(repo_.parent_path());
    ProgramOptions env;
    env.env = {{"HOME", dir_.path().string()}, {"GIT_CONFIG_NOSYSTEM", "1"},
               {"GIT_AUTHOR_NAME", "Seed"},    {"GIT_AUTHOR_EMAIL", "seed@example.test"},
               {"GIT_COMMITTER_NAME", "Seed"}, {"GIT_COMMITTER_EMAIL", "seed@example.test"}};
    git_env_ = env;
    run_ok({"git", "init", "-q", "--bare", "-b", "main", repo_.string()}, env);
    fs::path seed = dir_.path() / "seed";
    run_ok({"git", "init", "-q", "-b", "main", seed.string()}, env);
    write_file_atomic(seed / "README", "hello from upstream\n");
    run_ok({"git", "-C", seed.string(), "add", "README"}, env);
    run_ok({"git", "-C", seed.string(), "commit", "-qm", "initial"}, env);
    run_ok({"git", "-C", seed.string(), "push", "-q", repo_.string(), "main"}, env);
  }

  void write_known_hosts(const std::string& key_line) {
    write_file_atomic(known_hosts_,
                      "[" + std::string(kHost) + "]:" + std::to_string(sshd_->port()) + " " + key_line + "\n");
  }

  // `gondolin exec` with SSH egress to the test server, key on the host
  // only; `allow` and `key` replace the --ssh-allow-host and --ssh-key values.
  testing::CliResult run_in_guest(const std::string& script, std::vector<std::string> extra = {},
                                  std::string allow = {}, std::string key = {}, testing::CliOptions options = {}) {
    if (allow.empty()) allow = std::string(kHost) + ",upstream-port=" + std::to_string(sshd_->port());
    if (key.empty()) key = std::string(kHost) + "=" + sshd_->user_key().string();
    std::vector<std::string> args = {"exec",
                                     "--ssh-allow-host",
                                     allow,
                                     "--ssh-key",
                                     key,
                                     "--ssh-user",
                                     std::string(kHost) + "=root",
                                     "--ssh-known-hosts",
                                     known_hosts_.string(),
                                     "--test-loopback-host",
                                     kHost,
                                     "--egress-log",
                                     (dir_.path() / "egress.log").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--", "sh", "-c", script});
    return testing::run_gondolin(args, options);
  }

  std::string egress_log() const {
    std::error_code ec;
    return fs::exists(dir_.path() / "egress.log", ec) ? read_file(dir_.path() / "egress.log") : "";
  }

  TempDir dir_;
  std::unique_ptr<OpenSshServer> sshd_;
  fs::path known_hosts_, repo_;
  ProgramOptions git_env_;
};

TEST_F(SshGuest, GitCloneCommitPushFromTheGuest) {
  std::string url = "git@" + std::string(kHost) + ":" + repo_.string();
  auto r = run_in_guest(
      "set -e; export GIT_SSH_COMMAND='ssh -o BatchMode=yes'; git config --global user.name Guest; "
      "git config --global user.email guest@example.test; git clone -q " +
      url +
      " /tmp/p; cat /tmp/p/README; "
      "cd /tmp/p; echo 'written in the guest' > guest.txt; git add guest.txt; git commit -qm 'from the guest'; "
      "git push -q origin main; echo pushed");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello from upstream\npushed\n");
  EXPECT_EQ(run_ok({"git", "--git-dir", repo_.string(), "log", "-1", "--format=%s", "main"}, git_env_),
            "from the guest\n");
  EXPECT_EQ(run_ok({"git", "--git-dir", repo_.string(), "show", "main:guest.txt"}, git_env_), "written in the guest\n");
  EXPECT_EQ(sshd_->accepted_logins(), 2);
  std::string log = egress_log();
  EXPECT_NE(log.find("\"kind\":\"ssh\""), std::string::npos) << log;
  EXPECT_NE(log.find("git-upload-pack"), std::string::npos) << log;
  EXPECT_NE(log.find("git-receive-pack"), std::string::npos) << log;
}

TEST_F(SshGuest, ShellAndSftpAreRefusedAndTheKeyIsNowhereInTheGuest) {
  std::string key = read_file(sshd_->user_key());
  // A base64 run from the middle of the private key: any copy would contain it.
  std::string needle = key.substr(key.find('\n') + 1, 40);
  auto r = run_in_guest("ssh -o BatchMode=yes root@" + std::string(kHost) +
                        " </dev/null; echo shell=$?; "
                        "echo ls | sftp -b - -o BatchMode=yes root@" +
                        std::string(kHost) +
                        " >/dev/null 2>&1; echo sftp=$?; "
                        "ssh -o BatchMode=yes root@" +
                        std::string(kHost) +
                        " echo exec-works; "
                        "echo agent=${SSH_AUTH_SOCK:-none}; env | grep -c -- '" +
                        needle +
                        "'; "
                        "grep -rlF -- '" +
                        needle + "' /etc /root /tmp /run /home /var 2>/dev/null | wc -l");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("shell=255\n"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.find("sftp=0\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exec-works\n"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("agent=none\n0\n0\n"), std::string::npos) << r.out;
  // Only the exec reached the upstream server.
  EXPECT_EQ(sshd_->accepted_logins(), 1);
}

TEST_F(SshGuest, ChangedUpstreamHostKeyFailsClearlyAndSendsNothing) {
  fs::path other = dir_.path() / "other_key";
  make_key(other);
  write_known_hosts(public_key_line(other));
  auto r = run_in_guest("git clone -q git@" + std::string(kHost) + ":" + repo_.string() + " /tmp/p; echo rc=$?");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rc=128"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("host key"), std::string::npos) << r.err;
  EXPECT_EQ(sshd_->accepted_logins(), 0);
  EXPECT_NE(egress_log().find("\"decision\":\"deny\""), std::string::npos) << egress_log();
}

TEST_F(SshGuest, EncryptedKeyPort443AndAReadOnlyGitPolicy) {
  fs::path encrypted = dir_.path() / "encrypted_key";
  fs::copy_file(sshd_->user_key(), encrypted);
  fs::permissions(encrypted, fs::perms::owner_read | fs::perms::owner_write);
  run_ok({"ssh-keygen", "-q", "-p", "-N", "guest never sees this", "-f", encrypted.string()});
  const std::string url = "ssh://git@" + std::string(kHost) + ":443" + repo_.string();
  testing::CliOptions with_passphrase;
  with_passphrase.env["GONDOLIN_TEST_KEY_PASS"] = "guest never sees this";
  auto r = run_in_guest(
      "export GIT_SSH_COMMAND='ssh -o BatchMode=yes'; git config --global user.name Guest; "
      "git config --global user.email guest@example.test; git clone -q " +
          url +
          " /tmp/p && cat /tmp/p/README; cd /tmp/p; echo change > guest.txt; git add guest.txt; "
          "git commit -qm attempt; git push -q origin main; echo push=$?; "
          "ssh -o BatchMode=yes -p 443 root@" +
          kHost + " echo plain; echo plain=$?",
      {"--ssh-git-no-push"}, std::string(kHost) + ":443,upstream-port=" + std::to_string(sshd_->port()),
      std::string(kHost) + "=" + encrypted.string() + ",passphrase-env=GONDOLIN_TEST_KEY_PASS", with_passphrase);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("hello from upstream\n"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.find("push=0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("plain=255"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("gondolin: pushes are not allowed by the SSH git policy (refused git-receive-pack '" +
                       repo_.string() + "' on " + kHost + ")"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("gondolin: only git commands are allowed by the SSH git policy"), std::string::npos) << r.err;
  EXPECT_EQ(run_ok({"git", "--git-dir", repo_.string(), "log", "-1", "--format=%s", "main"}, git_env_), "initial\n");
  EXPECT_EQ(sshd_->accepted_logins(), 1);
  std::string log = egress_log();
  EXPECT_NE(log.find("\"port\":443"), std::string::npos) << log;
  EXPECT_NE(log.find("\"decision\":\"deny\",\"reason\":\"pushes are not allowed"), std::string::npos) << log;
  EXPECT_EQ(log.find("guest never sees this"), std::string::npos);
}

TEST_F(SshGuest, HostsNotAllowedAndTheWrongDnsMappingAreRefused) {
  auto r = run_in_guest("ssh -o BatchMode=yes -o StrictHostKeyChecking=no root@other.example.test true; echo rc=$?");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rc=255"), std::string::npos) << r.out;
  EXPECT_EQ(sshd_->accepted_logins(), 0);

  auto bad = testing::run_gondolin({"exec", "--ssh-allow-host", kHost, "--ssh-key",
                                    std::string(kHost) + "=" + sshd_->user_key().string(),
                                    "--dns-synthetic-host-mapping", "single", "--", "true"});
  EXPECT_EQ(bad.exit_code, 125);
  EXPECT_NE(bad.err.find("per-host"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace gondolin::ssh_test
