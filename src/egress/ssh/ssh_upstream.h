// One upstream SSH session, opened by the host for one guest exec request:
// connect, verify the server's host key against OpenSSH known_hosts,
// authenticate with the host's agent or key file, start the command.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "egress/ssh/libssh_handles.h"
#include "egress/ssh/socket_abort_switch.h"
#include "util/unique_fd.h"

namespace gondolin::egress {

struct SshUpstreamTarget {
  std::string host;  // as allowed; also the known_hosts name
  std::uint16_t port = 22;
  std::string user;
  std::string key_file;                              // non-empty: authenticate with this key
  std::optional<std::string> key_passphrase;         // the key file's, if it is encrypted
  std::string agent_socket;                          // otherwise: with the keys of this agent
  std::vector<std::string> known_hosts_files;        // empty: ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts
  bool connect_to_loopback = false;                  // TEST ONLY: connect to 127.0.0.1 instead of resolving
  std::chrono::milliseconds timeout{20'000};         // per step
  std::chrono::milliseconds stall_timeout{600'000};  // a blocked send gives up after this

  std::string display() const { return host + ":" + std::to_string(port); }
};

// Why an upstream session could not be started: a one-line message for the
// guest's stderr and the log. `denied` marks policy refusals (host key), as
// opposed to errors (unreachable, authentication failed).
struct SshUpstreamFailure {
  bool denied = false;
  std::string message;
};

struct UpstreamExitSignal {
  std::string name;  // "TERM", "KILL", ...
  bool core_dumped = false;
  std::string message;
};

class UpstreamExec {
 public:
  using StartResult = std::variant<std::unique_ptr<UpstreamExec>, SshUpstreamFailure>;

  // Blocking, each step bounded by target.timeout; `abort` can cut it short.
  // Nothing the guest chose (user, command, environment) is sent before the
  // server's host key has been verified.
  static StartResult start(const SshUpstreamTarget& target, const std::string& command,
                           const std::optional<std::string>& git_protocol, SocketAbortSwitch& abort);

  ~UpstreamExec();
  UpstreamExec(const UpstreamExec&) = delete;
  UpstreamExec& operator=(const UpstreamExec&) = delete;

  ssh_session session() const { return session_.get(); }
  ssh_channel channel() const { return channel_; }

  const std::optional<int>& exit_status() const { return exit_status_; }
  const std::optional<UpstreamExitSignal>& exit_signal() const { return exit_signal_; }

 private:
  UpstreamExec() = default;
  static void on_exit_status(ssh_session, ssh_channel, int status, void* self);
  static void on_exit_signal(ssh_session, ssh_channel, const char* signal, int core, const char* errmsg,
                             const char* lang, void* self);

  UniqueFd fd_;  // ours: libssh does not close a descriptor given with SSH_OPTIONS_FD
  SocketAbortSwitch::Watch watch_;
  SshSessionPtr session_;
  ssh_channel channel_ = nullptr;  // freed with the session
  ssh_channel_callbacks_struct callbacks_{};
  std::optional<int> exit_status_;
  std::optional<UpstreamExitSignal> exit_signal_;
};

}  // namespace gondolin::egress
