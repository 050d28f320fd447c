// The SSH proxy against a real OpenSSH server, driven by the host's real ssh,
// sftp and git clients playing the guest. No VM: each client connection is
// handed to the proxy as the network stack hands a guest flow.
#include "ssh_proxy_fixture.h"

namespace gondolin::ssh_test {
namespace {

using namespace std::chrono_literals;

TEST_F(SshProxyTest, GitCloneCommitPushThroughTheProxyWithAKeyFile) {
  start(key_file_config());
  fs::path work = dir_.path() / "work";
  std::string url = "git@" + std::string(kHost) + ":" + repo_.string();

  auto clone = run_program({"git", "clone", "-q", url, work.string()}, git_env());
  ASSERT_EQ(clone.exit_code, 0) << clone.err;
  EXPECT_EQ(read_file(work / "README"), "hello from upstream\n");

  write_file_atomic(work / "guest.txt", "written in the guest\n");
  run_ok({"git", "-C", work.string(), "add", "guest.txt"}, git_env());
  run_ok({"git", "-C", work.string(), "commit", "-qm", "from the guest"}, git_env());
  auto push = run_program({"git", "-C", work.string(), "push", "-q", "origin", "main"}, git_env());
  ASSERT_EQ(push.exit_code, 0) << push.err;

  EXPECT_EQ(run_ok({"git", "--git-dir", repo_.string(), "log", "-1", "--format=%s", "main"}, git_env()),
            "from the guest\n");
  EXPECT_EQ(run_ok({"git", "--git-dir", repo_.string(), "show", "main:guest.txt"}, git_env()),
            "written in the guest\n");

  auto allowed = events_with("allow");
  ASSERT_EQ(allowed.size(), 2u);
  EXPECT_EQ(allowed[0].command, "git-upload-pack '" + repo_.string() + "'");
  EXPECT_EQ(allowed[1].command, "git-receive-pack '" + repo_.string() + "'");
  for (const auto& e : allowed) {
    EXPECT_EQ(e.host, kHost);
    EXPECT_EQ(e.port, 22);
    EXPECT_EQ(e.user, "root");
    EXPECT_EQ(e.upstream, std::string(kHost) + ":" + std::to_string(sshd_->port()));
  }
  EXPECT_TRUE(events_with("deny").empty());
  EXPECT_EQ(sshd_->accepted_logins(), 2);
}

TEST_F(SshProxyTest, AgentAuthenticationPipesStdioAndExitStatus) {
  SshAgent agent(dir_.path());
  agent.add(sshd_->user_key());
  auto config = key_file_config();
  config.options.key_files.clear();
  config.options.use_agent = true;
  config.options.agent_socket = agent.socket().string();
  start(std::move(config));

  auto r = guest_ssh({kHost, "echo out; echo err >&2; exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");

  auto cat = guest_ssh({kHost, "cat; echo done"}, "line one\nline two\n");
  EXPECT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_EQ(cat.out, "line one\nline two\ndone\n");

  // A plain command is logged by its first word only.
  auto allowed = events_with("allow");
  ASSERT_EQ(allowed.size(), 2u);
  EXPECT_EQ(allowed[0].command, "echo");
  EXPECT_EQ(allowed[1].command, "cat;");
}

TEST_F(SshProxyTest, LargeTransfersBothWaysArriveWhole) {
  start(key_file_config());
  auto down = guest_ssh({kHost, "head -c 20000000 /dev/zero"});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  EXPECT_EQ(down.out.size(), 20'000'000u);

  std::string upload(20'000'000, 'x');
  auto up = guest_ssh({kHost, "wc -c"}, upload);
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_EQ(up.out, "20000000\n");
}

long rss_kib() {
  std::string status = read_file("/proc/self/status");
  auto pos = status.find("VmRSS:");
  return pos == std::string::npos ? 0 : std::stol(status.substr(pos + 6));
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kMeasuringMemory = false;  // ASan's quarantine keeps freed memory resident
#else
constexpr bool kMeasuringMemory = true;
#endif

TEST_F(SshProxyTest, AGuestThatStopsReadingHoldsTheProxyToBoundedMemory) {
  start(key_file_config());
  long baseline = rss_kib();
  std::atomic<bool> running{true};
  std::atomic<long> peak{baseline};
  std::thread sampler([&] {
    while (running) {
      peak = std::max(peak.load(), rss_kib());
      std::this_thread::sleep_for(20ms);
    }
  });
  // The guest's reader sleeps while upstream pushes 100 MB: everything in
  // between must stop at its windows and buffers, then resume.
  std::string ssh = "ssh -F " + guest_config_.string() + " " + kHost + " 'head -c 100000000 /dev/zero'";
  auto r = run_program({"sh", "-c", ssh + " | (sleep 3; wc -c)"});
  running = false;
  sampler.join();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "100000000\n");
  std::fprintf(stderr, "proxy process RSS growth: %ld KiB\n", peak - baseline);
  if (kMeasuringMemory) {
    EXPECT_LT(peak - baseline, 24 * 1024) << "RSS grew by " << (peak - baseline) << " KiB";
  }
}

TEST_F(SshProxyTest, InteractiveShellIsRefusedAndNothingRunsUpstream) {
  start(key_file_config());
  auto r = guest_ssh({"-T", kHost});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_NE(gondolin_line(r.err).find("interactive shells are refused"), std::string::npos) << r.err;

  // A forced terminal: OpenSSH gives up as soon as the pty is refused.
  auto tty = guest_ssh({"-tt", kHost});
  EXPECT_EQ(tty.exit_code, 255);
  EXPECT_NE(tty.err.find("PTY allocation request failed"), std::string::npos) << tty.err;

  EXPECT_EQ(sshd_->accepted_logins(), 0);
  std::vector<std::string> denied;
  for (const auto& e : events_with("deny")) denied.push_back(e.command);
  // OpenSSH pipelines the shell request behind the refused pty request; it
  // reaches the proxy only if the client has not hung up first, and then it
  // is refused too.
  ASSERT_GE(denied.size(), 2u);
  EXPECT_EQ(std::vector<std::string>(denied.begin(), denied.begin() + 2),
            (std::vector<std::string>{"shell", "pty-req"}));
  EXPECT_LE(denied.size(), 3u);
  if (denied.size() == 3) {
    EXPECT_EQ(denied[2], "shell");
  }
  EXPECT_TRUE(events_with("allow").empty());
}

TEST_F(SshProxyTest, SftpIsRefused) {
  start(key_file_config());
  auto r = run_program({"sftp", "-F", guest_config_.string(), "-b", "-", kHost}, ProgramOptions{{}, "ls\n", {}, 60s});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(gondolin_line(r.err).find("subsystem 'sftp' is refused"), std::string::npos) << r.err;
  EXPECT_EQ(sshd_->accepted_logins(), 0);
  auto denied = events_with("deny");
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0].command, "subsystem sftp");
}

TEST_F(SshProxyTest, PortForwardingIsRefused) {
  start(key_file_config());
  std::string target = "127.0.0.1:" + std::to_string(sshd_->port());
  auto w = guest_ssh({"-W", target, kHost});
  EXPECT_EQ(w.exit_code, 255);
  EXPECT_NE(w.err.find("administratively prohibited"), std::string::npos) << w.err;

  auto remote = guest_ssh({"-N", "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9", kHost});
  EXPECT_EQ(remote.exit_code, 255);
  EXPECT_NE(remote.err.find("remote port forwarding failed"), std::string::npos) << remote.err;

  EXPECT_EQ(sshd_->accepted_logins(), 0);
  bool logged_direct = false, logged_remote = false;
  for (const auto& e : events_with("deny")) {
    logged_direct |= e.command == "direct-tcpip " + target;
    logged_remote |= e.command == "tcpip-forward 127.0.0.1:0" || e.command == "tcpip-forward localhost:0";
  }
  EXPECT_TRUE(logged_direct);
  EXPECT_TRUE(logged_remote);
}

TEST_F(SshProxyTest, UnknownUpstreamHostKeyIsRefusedAndNothingIsSent) {
  write_file_atomic(known_hosts_, "");
  start(key_file_config());
  fs::path marker = dir_.path() / "marker";
  auto r = guest_ssh({kHost, "touch " + marker.string()});
  EXPECT_EQ(r.exit_code, 255);
  std::string line = gondolin_line(r.err);
  EXPECT_NE(line.find("is not in known_hosts"), std::string::npos) << r.err;
  EXPECT_NE(line.find(fingerprint_of(dir_.path() / "sshd" / "ssh_host_ed25519_key.pub")), std::string::npos) << line;
  EXPECT_NE(line.find("nothing was sent"), std::string::npos);
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_EQ(sshd_->accepted_logins(), 0);
  EXPECT_EQ(sshd_->log().find("userauth"), std::string::npos) << sshd_->log();
  auto denied = events_with("deny");
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0].command, "touch");
}

TEST_F(SshProxyTest, ChangedUpstreamHostKeyIsRefusedAndNothingIsSent) {
  fs::path other = dir_.path() / "other_host_key";
  make_key(other);
  write_file_atomic(known_hosts_, "[" + std::string(kHost) + "]:" + std::to_string(sshd_->port()) + " " +
                                      public_key_line(other) + "\n");
  start(key_file_config());
  fs::path marker = dir_.path() / "marker";
  auto r = guest_ssh({kHost, "touch " + marker.string()});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_NE(gondolin_line(r.err).find("does not match known_hosts"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(marker));
  EXPECT_EQ(sshd_->accepted_logins(), 0);
}

TEST_F(SshProxyTest, RevokedUpstreamHostKeyIsRefused) {
  std::string name = "[" + std::string(kHost) + "]:" + std::to_string(sshd_->port());
  write_file_atomic(known_hosts_,
                    name + " " + sshd_->host_key_line() + "\n@revoked * " + sshd_->host_key_line() + "\n");
  start(key_file_config());
  auto r = guest_ssh({kHost, "true"});
  EXPECT_EQ(r.exit_code, 255);
  EXPECT_NE(gondolin_line(r.err).find("@revoked"), std::string::npos) << r.err;
  EXPECT_EQ(sshd_->accepted_logins(), 0);
}

TEST_F(SshProxyTest, FlowsOutsideTheAllowlistAreRefused) {
  start(key_file_config(), {{kHost, 2222}, {"other.example.test", 22}, {"", 22}}, true);

  auto other = guest_ssh({"other.example.test", "true"});
  EXPECT_EQ(other.exit_code, 255);
  EXPECT_NE(gondolin_line(other.err).find("SSH to other.example.test is not allowed"), std::string::npos) << other.err;

  auto wrong_port = guest_ssh({kHost, "true"});
  EXPECT_EQ(wrong_port.exit_code, 255);
  EXPECT_NE(gondolin_line(wrong_port.err)
                .find("SSH to " + std::string(kHost) + " port 2222 is not allowed (allowed: port 22)"),
            std::string::npos)
      << wrong_port.err;

  auto by_address = guest_ssh({"unnamed.example.test", "true"});
  EXPECT_EQ(by_address.exit_code, 255);
  EXPECT_NE(gondolin_line(by_address.err).find("by address"), std::string::npos) << by_address.err;

  EXPECT_EQ(sshd_->accepted_logins(), 0);
  EXPECT_EQ(events_with("deny").size(), 3u);
  EXPECT_TRUE(events_with("allow").empty());
}

TEST_F(SshProxyTest, TheGuestOnlyEverSeesTheProxysPublicHostKey) {
  SshAgent agent(dir_.path());
  agent.add(sshd_->user_key());
  auto config = key_file_config();
  config.options.key_files.clear();
  config.options.use_agent = true;
  config.options.agent_socket = agent.socket().string();
  start(std::move(config));

  // A guest that asks for agent forwarding (offering an agent of its own) gets none upstream.
  ProgramOptions with_agent;
  with_agent.env["SSH_AUTH_SOCK"] = agent.socket().string();
  auto r = run_program({"ssh", "-F", guest_config_.string(), "-v", "-A", "-o",
                        "IdentityAgent=" + agent.socket().string(), kHost, "echo ${SSH_AUTH_SOCK:-no-agent}"},
                       with_agent);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "no-agent\n");
  EXPECT_NE(r.err.find("Server host key: ssh-ed25519 " + proxy_->host_key().fingerprint()), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(fingerprint_of(dir_.path() / "sshd" / "ssh_host_ed25519_key.pub")), std::string::npos);

  // Every key blob that crossed to the guest in the clear is the proxy's.
  std::string wire = port_by_name_.at(kHost)->sent_to_guest();
  EXPECT_NE(wire.find(key_blob(proxy_->host_key().public_key_line())), std::string::npos);
  EXPECT_EQ(wire.find(key_blob(sshd_->host_key_line())), std::string::npos);
  EXPECT_EQ(wire.find(key_blob(public_key_line(sshd_->user_key()))), std::string::npos);

  // And the key file the proxy keeps is private to the user.
  struct stat st {};
  ASSERT_EQ(::stat((dir_.path() / "config" / "ssh_host_ed25519_key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(SshProxyTest, OnlyGitProtocolIsForwardedFromTheGuestEnvironment) {
  start(key_file_config());
  auto r = guest_ssh({"-o", "SetEnv=GIT_PROTOCOL=version=2 FOO=bar", kHost, "echo \"$GIT_PROTOCOL|${FOO:-unset}\""});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "version=2|unset\n");
}

TEST_F(SshProxyTest, UpstreamSessionsAreCapped) {
  auto config = key_file_config();
  config.options.max_sessions = 1;
  start(std::move(config));
  auto first = std::async(std::launch::async, [&] { return guest_ssh({kHost, "sleep 3; echo first"}); });
  ASSERT_TRUE(wait_for_allow(20s));
  auto second = guest_ssh({kHost, "echo second"});
  EXPECT_EQ(second.exit_code, 255);
  EXPECT_NE(gondolin_line(second.err).find("too many concurrent SSH sessions (limit 1)"), std::string::npos)
      << second.err;
  auto done = first.get();
  EXPECT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(done.out, "first\n");
  // The slot is free again.
  auto third = guest_ssh({kHost, "echo third"});
  EXPECT_EQ(third.out, "third\n") << third.err;
}

TEST_F(SshProxyTest, AGuestThatStallsTheHandshakeIsDisconnected) {
  auto config = key_file_config();
  config.options.handshake_timeout = 1000ms;
  start(std::move(config));
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port_by_name_.at(kHost)->port());
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  std::string banner = "SSH-2.0-Stalling\r\n";
  ASSERT_EQ(::send(fd, banner.data(), banner.size(), MSG_NOSIGNAL), static_cast<ssize_t>(banner.size()));
  auto started = std::chrono::steady_clock::now();
  char buf[4096];
  while (::recv(fd, buf, sizeof buf, 0) > 0) {}
  auto took = std::chrono::steady_clock::now() - started;
  ::close(fd);
  EXPECT_LT(took, 10s);
  auto errors = events_with("error");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].reason.find("handshake"), std::string::npos) << errors[0].reason;
}

TEST_F(SshProxyTest, AnIdleSessionIsClosed) {
  auto config = key_file_config();
  config.options.idle_timeout = 1500ms;
  start(std::move(config));
  auto started = std::chrono::steady_clock::now();
  auto r = guest_ssh({kHost, "sleep 8; echo late"});
  EXPECT_LT(std::chrono::steady_clock::now() - started, 7s);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
}

TEST_F(SshProxyTest, DestroyingTheProxyEndsLiveSessions) {
  start(key_file_config());
  auto running = std::async(std::launch::async, [&] { return guest_ssh({kHost, "sleep 30; echo never"}); });
  ASSERT_TRUE(wait_for_allow(20s));
  auto started = std::chrono::steady_clock::now();
  proxy_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  auto r = running.get();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

}  // namespace
}  // namespace gondolin::ssh_test
