// Real OpenSSH pieces for the SSH proxy's component tests: an sshd on
// loopback with its own host key and an authorized test key, an ssh-agent,
// and a "guest port": a loopback listener whose connections are handed to the
// proxy exactly as the network stack hands guest flows (a unix stream socket
// with the first bytes already read).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "egress/ssh/ssh_audit.h"
#include "egress/ssh/ssh_proxy.h"
#include "io_thread.h"

namespace gondolin::ssh_test {

namespace fs = std::filesystem;

struct ProgramResult {
  int exit_code = -1;  // -1: killed by a signal
  std::string out;
  std::string err;
};

struct ProgramOptions {
  std::map<std::string, std::string> env;  // added to the test's environment
  std::string stdin_data;
  fs::path cwd;
  std::chrono::seconds timeout{60};
};

// Runs a program to completion with stdout and stderr captured separately.
ProgramResult run_program(const std::vector<std::string>& argv, const ProgramOptions& options = {});
// Like run_program but throws with the output if it fails.
std::string run_ok(const std::vector<std::string>& argv, const ProgramOptions& options = {});

// A private temporary directory, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// "ssh-ed25519 AAAA..." of a key file (public part).
std::string public_key_line(const fs::path& private_key);
// Creates an unencrypted ed25519 key pair at PATH and PATH.pub.
void make_key(const fs::path& path);

class OpenSshServer {
 public:
  explicit OpenSshServer(const fs::path& dir);
  ~OpenSshServer();
  OpenSshServer(const OpenSshServer&) = delete;
  OpenSshServer& operator=(const OpenSshServer&) = delete;

  std::uint16_t port() const { return port_; }
  const fs::path& user_key() const { return user_key_; }  // authorized for root
  std::string host_key_line() const;                      // "ssh-ed25519 AAAA..."
  std::string log() const;                                // sshd's own log (LogLevel VERBOSE)
  // Number of successful logins so far.
  int accepted_logins() const;

 private:
  fs::path dir_;
  fs::path user_key_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

class SshAgent {
 public:
  explicit SshAgent(const fs::path& dir);
  ~SshAgent();
  SshAgent(const SshAgent&) = delete;
  SshAgent& operator=(const SshAgent&) = delete;
  const fs::path& socket() const { return socket_; }
  void add(const fs::path& key);

 private:
  fs::path socket_;
  pid_t pid_ = -1;
};

// Collects audit events (thread-safe).
class RecordingAudit final : public egress::SshAuditSink {
 public:
  void record(const egress::SshAuditEvent& event) override;
  std::vector<egress::SshAuditEvent> events() const;

 private:
  mutable std::mutex mutex_;
  std::vector<egress::SshAuditEvent> events_;
};

// A loopback TCP port standing in for the guest's view of HOST:22. Each
// accepted connection becomes a GuestFlow (hostname, port 22, the first
// bytes as prefix, a unix socket) handed to the proxy on the io thread.
class GuestPort {
 public:
  GuestPort(test_support::IoThread& io, egress::SshProxy& proxy, std::string hostname, std::uint16_t dest_port = 22);
  ~GuestPort();
  GuestPort(const GuestPort&) = delete;
  GuestPort& operator=(const GuestPort&) = delete;

  std::uint16_t port() const { return port_; }
  // Every byte the proxy sent towards the guest's clients so far.
  std::string sent_to_guest() const;

 private:
  void accept_loop();
  void relay(int tcp_fd, int unix_fd);

  test_support::IoThread& io_;
  egress::SshProxy& proxy_;
  std::string hostname_;
  std::uint16_t dest_port_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::thread> relays_;
  std::string sent_;
  std::uint64_t next_flow_ = 1;
};

// An ssh client config for the "guest": each host name maps to its GuestPort,
// known_hosts holds exactly `known_hosts_lines`, and nothing can prompt.
fs::path write_guest_ssh_config(const fs::path& dir, const std::map<std::string, std::uint16_t>& host_ports,
                                const std::vector<std::string>& known_hosts_lines);

}  // namespace gondolin::ssh_test
