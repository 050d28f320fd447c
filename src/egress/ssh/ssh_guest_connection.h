// One guest SSH connection, served on its own thread: the host's end of the
// guest's SSH session (our host key, `none` authentication), and for each of
// its exec requests an upstream session piped through a ChannelBridge.
// Everything else the guest asks for is refused, with a reason on its stderr
// where SSH leaves room for one.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "egress/ssh/libssh_handles.h"
#include "egress/ssh/socket_abort_switch.h"
#include "egress/ssh/ssh_channel_bridge.h"
#include "egress/ssh/ssh_proxy_state.h"
#include "util/unique_fd.h"

namespace gondolin::egress {

class GuestConnection {
 public:
  // `fd` is a blocking stream socket carrying the guest's bytes from the first one.
  GuestConnection(std::shared_ptr<const SshProxyState> state, SshFlowFacts flow, UniqueFd fd, SocketAbortSwitch& abort);
  ~GuestConnection();
  GuestConnection(const GuestConnection&) = delete;
  GuestConnection& operator=(const GuestConnection&) = delete;

  // Serves the connection until the guest leaves, a timeout passes or the
  // proxy aborts it. Never throws.
  void run() noexcept;

 private:
  using Clock = std::chrono::steady_clock;

  bool accept_and_handshake();
  void serve();
  void handle_request(ChannelBridge& bridge);
  void run_exec(ChannelBridge& bridge);
  void deny(ChannelBridge& bridge, const std::string& command, const std::string& reason, const std::string& message);
  void drop_upstream(ChannelBridge& bridge);
  void record(const std::string& command, const std::string& decision, const std::string& reason,
              const std::string& upstream = {});
  void record_refusal(const std::string& what, const std::string& reason);
  bool guest_gone() const;
  std::string policy_denial() const;

  static int on_auth_none(ssh_session, const char* user, void* self);
  static int on_auth_pubkey(ssh_session, const char* user, ssh_key_struct*, char state, void* self);
  static ssh_channel on_channel_open(ssh_session, void* self);
  static int on_message(ssh_session, ssh_message msg, void* self);

  std::shared_ptr<const SshProxyState> state_;
  SshFlowFacts flow_;
  UniqueFd fd_;  // until libssh owns it
  SocketAbortSwitch& abort_;
  SocketAbortSwitch::Watch watch_;
  std::string host_;  // normalized name the guest dialled, or its address

  SshSessionPtr session_;
  SshEventPtr event_;
  ssh_server_callbacks_struct server_callbacks_{};
  std::string guest_user_;
  bool authenticated_ = false;
  std::vector<std::unique_ptr<ChannelBridge>> bridges_;
  int refusals_logged_ = 0;
};

}  // namespace gondolin::egress
