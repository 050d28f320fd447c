// SSH egress policy beyond the basics, against a real OpenSSH server with
// the host's ssh and git playing the guest: passphrase-protected keys,
// several known_hosts files, a non-standard port the guest dials, and the
// git policy (listed repositories, no pushes).
#include "config/ssh_git_rules.h"
#include "ssh_proxy_fixture.h"

namespace gondolin::ssh_test {
namespace {

TEST_F(SshProxyTest, APassphraseProtectedKeyAuthenticates) {
  fs::path encrypted = dir_.path() / "encrypted_key";
  fs::copy_file(sshd_->user_key(), encrypted);
  fs::permissions(encrypted, fs::perms::owner_read | fs::perms::owner_write);
  run_ok({"ssh-keygen", "-q", "-p", "-N", "correct horse", "-f", encrypted.string()});
  auto config = key_file_config();
  config.options.key_files = {{kHost, encrypted.string()}};
  config.options.key_passphrases = {{kHost, "correct horse"}};
  start(config);
  auto r = guest_ssh({kHost, "echo through an encrypted key"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "through an encrypted key\n");
}

TEST_F(SshProxyTest, AKeyListedInAnyKnownHostsFileIsTrusted) {
  fs::path empty = dir_.path() / "empty_known_hosts", other = dir_.path() / "other_known_hosts";
  write_file_atomic(empty, "");
  write_file_atomic(other, "unrelated.example.test " + sshd_->host_key_line() + "\n");
  auto config = key_file_config();
  config.options.known_hosts_files = {empty.string(), other.string(), known_hosts_.string()};
  start(config);
  auto ok = guest_ssh({kHost, "echo trusted"});
  EXPECT_EQ(ok.out, "trusted\n") << ok.err;

  config = key_file_config();
  config.options.known_hosts_files = {empty.string(), other.string()};
  start(config);
  auto r = guest_ssh({kHost, "echo never"});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_NE(gondolin_line(r.err).find("is not in known_hosts (" + empty.string() + ", " + other.string() + ")"),
            std::string::npos)
      << r.err;
}

TEST_F(SshProxyTest, TheGuestDialsANonStandardPortItIsAllowed) {
  auto config = key_file_config();
  config.options.allowed_hosts = {{kHost, sshd_->port(), 443}};
  start(config, {{kHost, 443}}, true);
  std::vector<std::string> known = proxy_->guest_known_hosts();
  ASSERT_EQ(known.size(), 1u);
  EXPECT_EQ(known[0].rfind("[" + std::string(kHost) + "]:443 ssh-ed25519 ", 0), 0u) << known[0];
  auto ok = guest_ssh({kHost, "echo via 443"});
  EXPECT_EQ(ok.out, "via 443\n") << ok.err;
  ASSERT_FALSE(events_with("allow").empty());
  EXPECT_EQ(events_with("allow")[0].port, 443);

  start(config, {{kHost, 22}}, true);
  auto refused = guest_ssh({kHost, "echo never"});
  EXPECT_EQ(refused.exit_code, 255);
  EXPECT_NE(
      gondolin_line(refused.err).find("SSH to " + std::string(kHost) + " port 22 is not allowed (allowed: port 443)"),
      std::string::npos)
      << refused.err;
}

TEST_F(SshProxyTest, GitPolicyRefusesPushesAndUnlistedRepositories) {
  auto config = key_file_config();
  config.options.git.push = false;
  config.options.git.repos = {std::string(kHost) + ":" + config::normalize_git_repo_path(repo_.string())};
  start(config);
  fs::path work = dir_.path() / "work";
  std::string url = "git@" + std::string(kHost) + ":" + repo_.string();
  auto clone = run_program({"git", "clone", "-q", url, work.string()}, git_env());
  ASSERT_EQ(clone.exit_code, 0) << clone.err;

  write_file_atomic(work / "guest.txt", "not to be pushed\n");
  run_ok({"git", "-C", work.string(), "add", "guest.txt"}, git_env());
  run_ok({"git", "-C", work.string(), "commit", "-qm", "attempt"}, git_env());
  auto push = run_program({"git", "-C", work.string(), "push", "-q", "origin", "main"}, git_env());
  EXPECT_NE(push.exit_code, 0);
  EXPECT_NE(push.err.find("gondolin: pushes are not allowed by the SSH git policy (refused git-receive-pack"),
            std::string::npos)
      << push.err;
  EXPECT_EQ(run_ok({"git", "--git-dir", repo_.string(), "log", "-1", "--format=%s", "main"}, git_env()), "initial\n");

  fs::path other = dir_.path() / "repos" / "other.git";
  run_ok({"git", "init", "-q", "--bare", other.string()}, git_env());
  auto unlisted = run_program(
      {"git", "clone", "-q", "git@" + std::string(kHost) + ":" + other.string(), (dir_.path() / "other").string()},
      git_env());
  EXPECT_NE(unlisted.exit_code, 0);
  EXPECT_NE(unlisted.err.find("is not one the SSH git policy allows"), std::string::npos) << unlisted.err;

  auto plain = guest_ssh({kHost, "echo plain"});
  EXPECT_EQ(plain.exit_code, 255);
  EXPECT_NE(gondolin_line(plain.err).find("only git commands are allowed by the SSH git policy"), std::string::npos);

  // One log line per refusal, naming the command.
  auto denied = events_with("deny");
  ASSERT_EQ(denied.size(), 3u);
  EXPECT_EQ(denied[0].command, "git-receive-pack '" + repo_.string() + "'");
  EXPECT_NE(denied[0].reason.find("pushes are not allowed"), std::string::npos);
  EXPECT_EQ(sshd_->accepted_logins(), 1) << "only the clone reached the server";
}

TEST_F(SshProxyTest, TheSessionsDenyListCoversSsh) {
  start(key_file_config());
  proxy_->set_denied_hosts({"*.example.test"});
  auto denied = guest_ssh({kHost, "echo never"});
  EXPECT_EQ(denied.exit_code, 255);
  EXPECT_NE(gondolin_line(denied.err)
                .find("SSH to " + std::string(kHost) + " is denied by the session's policy (*.example.test)"),
            std::string::npos)
      << denied.err;
  EXPECT_EQ(sshd_->accepted_logins(), 0);
  proxy_->set_denied_hosts({});
  auto allowed = guest_ssh({kHost, "echo again"});
  EXPECT_EQ(allowed.out, "again\n") << allowed.err;
}

}  // namespace
}  // namespace gondolin::ssh_test
