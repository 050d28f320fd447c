// One guest session channel and, once its exec request is running, the
// upstream channel it is piped to: stdin one way, stdout and stderr the other,
// then EOF, the exit status (or signal) and close, in the order SSH needs.
//
// All of it runs on the connection's thread. libssh callbacks only record
// what happened and buffer data (bounded, see StreamRelay); the connection
// loop calls pump() to act on it.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include <memory>
#include <optional>
#include <string>

#include "egress/ssh/ssh_session_budget.h"
#include "egress/ssh/ssh_stream_relay.h"
#include "egress/ssh/ssh_upstream.h"

namespace gondolin::egress {

enum class GuestRequest { None, Exec, Shell, Subsystem };

class ChannelBridge {
 public:
  // Installs the bridge's callbacks on `guest` and takes over freeing it.
  explicit ChannelBridge(ssh_channel guest);
  ~ChannelBridge();
  ChannelBridge(const ChannelBridge&) = delete;
  ChannelBridge& operator=(const ChannelBridge&) = delete;

  ssh_channel guest() const { return guest_; }

  // What the guest asked for, recorded by the callbacks; the connection acts on it.
  GuestRequest request = GuestRequest::None;
  bool request_handled = false;
  std::string request_text;                 // the exec command or the subsystem name
  std::optional<std::string> git_protocol;  // from an accepted env request
  int env_requests = 0;
  bool guest_overflowed = false;  // the guest ignored the window we granted
  int pty_refusals = 0;           // pty requests refused, not yet logged

  // Ends the channel with one line on the guest's stderr and exit status 255.
  void refuse(const std::string& message);
  // Starts piping; the upstream session must already be in the connection's
  // event. The slot is held for as long as the bridge lives.
  void attach(std::unique_ptr<UpstreamExec> upstream, SessionBudget::Slot slot);
  UpstreamExec* upstream() const { return upstream_.get(); }
  // Detaches the upstream session (to remove it from the event before it is destroyed).
  std::unique_ptr<UpstreamExec> take_upstream();

  enum class PumpResult { Idle, Progress, UpstreamFailed, GuestFailed };
  // Moves what can move without blocking.
  PumpResult pump();

  // Closed towards the guest (or by it): the bridge can go.
  bool finished() const { return closed_towards_guest_; }

 private:
  static int on_guest_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* self);
  static int on_upstream_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* self);
  static int on_pty(ssh_session, ssh_channel, const char*, int, int, int, int, void* self);
  static int on_shell(ssh_session, ssh_channel, void* self);
  static int on_exec(ssh_session, ssh_channel, const char* command, void* self);
  static int on_subsystem(ssh_session, ssh_channel, const char* name, void* self);
  static int on_env(ssh_session, ssh_channel, const char* name, const char* value, void* self);
  void finish_from_upstream();

  ssh_channel guest_;
  ssh_channel_callbacks_struct guest_callbacks_{};
  ssh_channel_callbacks_struct upstream_callbacks_{};
  std::unique_ptr<UpstreamExec> upstream_;
  SessionBudget::Slot slot_;
  StreamRelay stdin_;   // guest -> upstream
  StreamRelay stdout_;  // upstream -> guest
  StreamRelay stderr_;  // upstream -> guest
  bool eof_sent_upstream_ = false;
  bool eof_sent_to_guest_ = false;
  bool closed_towards_guest_ = false;
  bool upstream_overflowed_ = false;
};

}  // namespace gondolin::egress
