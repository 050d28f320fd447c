#include "egress/ssh/ssh_channel_bridge.h"

#include <libssh/server.h>

#include <cstring>

#include "egress/ssh/ssh_request_rules.h"

namespace gondolin::egress {
namespace {

constexpr int kMaxEnvRequests = 32;
constexpr int kRefusedExitStatus = 255;

}  // namespace

ChannelBridge::ChannelBridge(ssh_channel guest) : guest_(guest) {
  ssh_callbacks_init(&guest_callbacks_);
  guest_callbacks_.userdata = this;
  guest_callbacks_.channel_data_function = &ChannelBridge::on_guest_data;
  guest_callbacks_.channel_pty_request_function = &ChannelBridge::on_pty;
  guest_callbacks_.channel_shell_request_function = &ChannelBridge::on_shell;
  guest_callbacks_.channel_exec_request_function = &ChannelBridge::on_exec;
  guest_callbacks_.channel_subsystem_request_function = &ChannelBridge::on_subsystem;
  guest_callbacks_.channel_env_request_function = &ChannelBridge::on_env;
  // No x11 or auth-agent callbacks: libssh then refuses those requests.
  ssh_set_channel_callbacks(guest_, &guest_callbacks_);
}

ChannelBridge::~ChannelBridge() {
  take_upstream();
  // libssh may keep the channel until the guest's close arrives; it must not call back into us.
  ssh_remove_channel_callbacks(guest_, &guest_callbacks_);
  if (!ssh_channel_is_closed(guest_)) ssh_channel_close(guest_);
  ssh_channel_free(guest_);
}

std::unique_ptr<UpstreamExec> ChannelBridge::take_upstream() {
  if (upstream_) ssh_remove_channel_callbacks(upstream_->channel(), &upstream_callbacks_);
  return std::move(upstream_);
}

int ChannelBridge::on_guest_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* self) {
  auto* b = static_cast<ChannelBridge*>(self);
  if (len > kMaxChannelBuffered) b->guest_overflowed = true;
  if (is_stderr) return static_cast<int>(len);  // a client's extended data means nothing to a command
  return static_cast<int>(b->stdin_.take(data, len));
}

int ChannelBridge::on_upstream_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* self) {
  auto* b = static_cast<ChannelBridge*>(self);
  if (len > kMaxChannelBuffered) b->upstream_overflowed_ = true;
  return static_cast<int>((is_stderr ? b->stderr_ : b->stdout_).take(data, len));
}

int ChannelBridge::on_pty(ssh_session, ssh_channel, const char*, int, int, int, int, void* self) {
  ++static_cast<ChannelBridge*>(self)->pty_refusals;
  return -1;  // OpenSSH then prints "PTY allocation request failed"
}

int ChannelBridge::on_shell(ssh_session, ssh_channel, void* self) {
  auto* b = static_cast<ChannelBridge*>(self);
  if (b->request != GuestRequest::None) return -1;
  b->request = GuestRequest::Shell;
  return 0;  // accepted, then ended with an explanation on stderr
}

int ChannelBridge::on_exec(ssh_session, ssh_channel, const char* command, void* self) {
  auto* b = static_cast<ChannelBridge*>(self);
  if (b->request != GuestRequest::None || !command) return -1;
  b->request = GuestRequest::Exec;
  b->request_text.assign(command, ::strnlen(command, kMaxExecCommandBytes + 1));
  return 0;
}

int ChannelBridge::on_subsystem(ssh_session, ssh_channel, const char* name, void* self) {
  auto* b = static_cast<ChannelBridge*>(self);
  if (b->request != GuestRequest::None || !name) return -1;
  b->request = GuestRequest::Subsystem;
  b->request_text.assign(name, ::strnlen(name, 64));
  return 0;
}

int ChannelBridge::on_env(ssh_session, ssh_channel, const char* name, const char* value, void* self) {
  auto* b = static_cast<ChannelBridge*>(self);
  if (b->request != GuestRequest::None || ++b->env_requests > kMaxEnvRequests || !name || !value) return -1;
  if (!forwardable_env(name, value)) return -1;
  b->git_protocol = value;
  return 0;
}

void ChannelBridge::refuse(const std::string& message) {
  if (closed_towards_guest_) return;
  std::string line = message + "\n";
  if (!ssh_channel_is_closed(guest_)) {
    ssh_channel_write_stderr(guest_, line.data(), static_cast<uint32_t>(line.size()));
    ssh_channel_request_send_exit_status(guest_, kRefusedExitStatus);
    ssh_channel_send_eof(guest_);
    ssh_channel_close(guest_);
  }
  closed_towards_guest_ = true;
}

void ChannelBridge::attach(std::unique_ptr<UpstreamExec> upstream, SessionBudget::Slot slot) {
  upstream_ = std::move(upstream);
  slot_ = std::move(slot);
  ssh_callbacks_init(&upstream_callbacks_);
  upstream_callbacks_.userdata = this;
  upstream_callbacks_.channel_data_function = &ChannelBridge::on_upstream_data;
  ssh_add_channel_callbacks(upstream_->channel(), &upstream_callbacks_);
  // Output may have arrived while the command was being started.
  stdout_.mark_held_back();
  stderr_.mark_held_back();
  stdin_.mark_held_back();
}

ChannelBridge::PumpResult ChannelBridge::pump() {
  if (!upstream_ || closed_towards_guest_) return PumpResult::Idle;
  if (ssh_channel_is_closed(guest_)) {
    // The guest gave up on the command: so do we.
    closed_towards_guest_ = true;
    return PumpResult::Progress;
  }
  ssh_channel up = upstream_->channel();
  bool progress = false;

  if (!eof_sent_upstream_ && !ssh_channel_is_closed(up)) {
    if (!stdin_.refill(guest_, false, progress)) return PumpResult::GuestFailed;
    if (!stdin_.flush(up, false, progress)) return PumpResult::UpstreamFailed;
    if (stdin_.empty() && ssh_channel_is_eof(guest_)) {
      ssh_channel_send_eof(up);
      eof_sent_upstream_ = true;
      progress = true;
    }
  }

  if (!eof_sent_to_guest_) {
    if (!stdout_.refill(up, false, progress) || !stderr_.refill(up, true, progress)) return PumpResult::UpstreamFailed;
    if (!stdout_.flush(guest_, false, progress) || !stderr_.flush(guest_, true, progress))
      return PumpResult::GuestFailed;
    if (stdout_.empty() && stderr_.empty() && ssh_channel_is_eof(up)) {
      ssh_channel_send_eof(guest_);
      eof_sent_to_guest_ = true;
      progress = true;
    }
  }
  if (upstream_overflowed_) return PumpResult::UpstreamFailed;

  // The exit status travels after the last byte of output, then the close.
  // (libssh reports a channel closed only once its own buffers are read.)
  if (stdout_.empty() && stderr_.empty() && ssh_channel_is_closed(up) && !socket_backlogged(guest_)) {
    finish_from_upstream();
    progress = true;
  }
  return progress ? PumpResult::Progress : PumpResult::Idle;
}

void ChannelBridge::finish_from_upstream() {
  if (upstream_->exit_status()) {
    ssh_channel_request_send_exit_status(guest_, *upstream_->exit_status());
  } else if (const auto& sig = upstream_->exit_signal()) {
    ssh_channel_request_send_exit_signal(guest_, sig->name.c_str(), sig->core_dumped ? 1 : 0, sig->message.c_str(), "");
  }
  if (!eof_sent_to_guest_) ssh_channel_send_eof(guest_);
  ssh_channel_close(guest_);
  closed_towards_guest_ = true;
}

}  // namespace gondolin::egress
