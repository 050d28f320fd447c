// The fixture of the SSH proxy tests: a real OpenSSH server on 127.0.0.1
// with a bare git repository, the proxy, and the host's ssh/git playing the
// guest through loopback ports whose connections reach the proxy as guest
// flows do.
#pragma once

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "egress/ssh/ssh_proxy.h"
#include "ssh_test_harness.h"
#include "util/files.h"

namespace gondolin::ssh_test {

using namespace std::chrono_literals;
using egress::SshAuditEvent;

inline constexpr const char* kHost = "git.example.test";

inline std::string base64_decode(const std::string& in) {
  static const std::string chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (char c : in) {
    auto pos = chars.find(c);
    if (pos == std::string::npos) break;
    buf = (buf << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buf >> bits) & 0xff));
    }
  }
  return out;
}

inline std::string key_blob(const std::string& key_line) {
  return base64_decode(key_line.substr(key_line.find(' ') + 1));
}

inline std::string fingerprint_of(const fs::path& pub_or_private) {
  // "256 SHA256:xxxx comment (ED25519)"
  std::string out = run_ok({"ssh-keygen", "-l", "-f", pub_or_private.string()});
  auto start = out.find("SHA256:");
  return out.substr(start, out.find(' ', start) - start);
}

// The single line of `err` that gondolin wrote.
inline std::string gondolin_line(const std::string& err) {
  auto pos = err.find("gondolin: ");
  if (pos == std::string::npos) return {};
  return err.substr(pos, err.find('\n', pos) - pos);
}

class SshProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sshd_ = std::make_unique<OpenSshServer>(dir_.path() / "sshd");
    home_ = dir_.path() / "home";
    fs::create_directories(home_);
    known_hosts_ = dir_.path() / "upstream_known_hosts";
    write_file_atomic(known_hosts_, "[" + std::string(kHost) + "]:" + std::to_string(sshd_->port()) + " " +
                                        sshd_->host_key_line() + "\n");
    repo_ = dir_.path() / "repos" / "project.git";
    fs::create_directories(repo_.parent_path());
    run_ok({"git", "init", "-q", "--bare", "-b", "main", repo_.string()}, git_env());
    fs::path seed = dir_.path() / "seed";
    run_ok({"git", "init", "-q", "-b", "main", seed.string()}, git_env());
    write_file_atomic(seed / "README", "hello from upstream\n");
    run_ok({"git", "-C", seed.string(), "add", "README"}, git_env());
    run_ok({"git", "-C", seed.string(), "commit", "-qm", "initial"}, git_env());
    run_ok({"git", "-C", seed.string(), "push", "-q", repo_.string(), "main"}, git_env());
  }

  void TearDown() override {
    proxy_.reset();  // ends live connections first; the ports' relays then see EOF
    port_by_name_.clear();
    ports_.clear();
  }

  ProgramOptions git_env() const {
    ProgramOptions o;
    o.env = {{"HOME", home_.string()},        {"GIT_CONFIG_NOSYSTEM", "1"},
             {"GIT_AUTHOR_NAME", "Guest"},    {"GIT_AUTHOR_EMAIL", "guest@example.test"},
             {"GIT_COMMITTER_NAME", "Guest"}, {"GIT_COMMITTER_EMAIL", "guest@example.test"}};
    if (!guest_config_.empty()) o.env["GIT_SSH_COMMAND"] = "ssh -F " + guest_config_.string();
    return o;
  }

  egress::SshProxyConfig key_file_config() {
    egress::SshProxyConfig c;
    c.options.allowed_hosts = {{kHost, sshd_->port()}};
    c.options.key_files = {{kHost, sshd_->user_key().string()}};
    c.options.users = {{kHost, "root"}};  // the test sshd's account; the guest says git@
    c.options.known_hosts_files = {known_hosts_.string()};
    c.options.host_key_dir = (dir_.path() / "config").string();
    c.test_loopback_hosts = {kHost};
    c.audit = audit_;
    return c;
  }

  // Starts the proxy and the guest's view of it: HOST:DEST_PORT for each name
  // given ("" = a flow without a host name, reached as unnamed.example.test).
  // The guest's known_hosts is what the proxy says it needs, unless
  // `trust_proxy_for_every_name` extends it to all names (so refusals for
  // names outside the allowlist reach the guest as messages).
  void start(egress::SshProxyConfig config, std::map<std::string, std::uint16_t> guest_hosts = {{kHost, 22}},
             bool trust_proxy_for_every_name = false) {
    proxy_ = std::make_unique<egress::SshProxy>(io_.io(), std::move(config));
    std::map<std::string, std::uint16_t> host_ports;
    std::vector<std::string> known = proxy_->guest_known_hosts();
    if (trust_proxy_for_every_name) known.clear();
    for (const auto& [name, dest_port] : guest_hosts) {
      ports_.push_back(std::make_unique<GuestPort>(io_, *proxy_, name, dest_port));
      std::string client_name = name.empty() ? "unnamed.example.test" : name;
      host_ports[client_name] = ports_.back()->port();
      port_by_name_[client_name] = ports_.back().get();
      if (trust_proxy_for_every_name) known.push_back(client_name + " " + proxy_->host_key().public_key_line());
    }
    guest_config_ = write_guest_ssh_config(dir_.path(), host_ports, known);
  }

  ProgramResult guest_ssh(std::vector<std::string> args, const std::string& stdin_data = {}) {
    std::vector<std::string> argv = {"ssh", "-F", guest_config_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    ProgramOptions o;
    o.stdin_data = stdin_data;
    return run_program(argv, o);
  }

  std::vector<SshAuditEvent> events_with(const std::string& decision) const {
    std::vector<SshAuditEvent> out;
    for (const auto& e : audit_->events())
      if (e.decision == decision) out.push_back(e);
    return out;
  }

  bool wait_for_allow(std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (!events_with("allow").empty()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  TempDir dir_;
  test_support::IoThread io_;
  std::unique_ptr<OpenSshServer> sshd_;
  std::shared_ptr<RecordingAudit> audit_ = std::make_shared<RecordingAudit>();
  fs::path home_, known_hosts_, repo_, guest_config_;
  std::vector<std::unique_ptr<GuestPort>> ports_;
  std::map<std::string, GuestPort*> port_by_name_;
  std::unique_ptr<egress::SshProxy> proxy_;
};

}  // namespace gondolin::ssh_test
