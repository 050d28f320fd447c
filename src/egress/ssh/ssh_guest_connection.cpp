#include "egress/ssh/ssh_guest_connection.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <exception>

#include "config/ssh_rules.h"
#include "egress/ssh/ssh_request_rules.h"
#include "util/logging.h"

namespace gondolin::egress {
namespace {

constexpr std::size_t kMaxChannelsPerConnection = 8;
constexpr int kMaxRefusalsLogged = 32;
constexpr std::chrono::milliseconds kMaxPollWait{1000};

std::string without_prefix(const std::string& message) {
  constexpr std::string_view prefix = "gondolin: ";
  return message.starts_with(prefix) ? message.substr(prefix.size()) : message;
}

}  // namespace

GuestConnection::GuestConnection(std::shared_ptr<const SshProxyState> state, SshFlowFacts flow, UniqueFd fd,
                                 SocketAbortSwitch& abort)
    : state_(std::move(state)), flow_(std::move(flow)), fd_(std::move(fd)), abort_(abort) {
  host_ = flow_.hostname ? config::normalize_host_name(*flow_.hostname) : flow_.dest_address;
  watch_ = abort_.watch(fd_.get());
}

GuestConnection::~GuestConnection() {
  // Upstream sessions leave the event before they are freed; then the guest's.
  for (auto& b : bridges_) drop_upstream(*b);
  bridges_.clear();
  if (event_ && session_) ssh_event_remove_session(event_.get(), session_.get());
  event_.reset();
  if (session_ && ssh_is_connected(session_.get())) ssh_disconnect(session_.get());
  session_.reset();
}

void GuestConnection::run() noexcept {
  try {
    if (accept_and_handshake()) serve();
  } catch (const std::exception& e) {
    record("", "error", std::string("internal error: ") + e.what());
  }
}

std::string GuestConnection::policy_denial() const {
  if (!flow_.hostname)
    return "the guest dialled " + flow_.dest_address +
           " by address; SSH egress needs the host name (use gondolin's DNS)";
  if (!config::find_allowed_host(state_->options, host_))
    return "SSH to " + host_ + " is not allowed (not an --ssh-allow-host)";
  if (auto pattern = state_->denied(host_); !pattern.empty())
    return "SSH to " + host_ + " is denied by the session's policy (" + pattern + ")";
  if (!config::find_allowed_host(state_->options, host_, flow_.dest_port)) {
    std::string ports;
    for (const auto& a : state_->options.allowed_hosts)
      if (a.host == host_) ports += (ports.empty() ? "" : ", ") + std::to_string(a.guest_port);
    return "SSH to " + host_ + " port " + std::to_string(flow_.dest_port) + " is not allowed (allowed: port " + ports +
           ")";
  }
  return {};
}

bool GuestConnection::accept_and_handshake() {
  SshBindPtr bind(ssh_bind_new());
  session_.reset(ssh_new());
  if (!bind || !session_) {
    record("", "error", "out of memory");
    return false;
  }
  int no = 0;
  int quiet = SSH_LOG_NOLOG;
  ssh_key key = nullptr;
  if (ssh_pki_import_privkey_base64(state_->host_key.private_key_openssh().c_str(), nullptr, nullptr, nullptr, &key) !=
          SSH_OK ||
      ssh_bind_options_set(bind.get(), SSH_BIND_OPTIONS_IMPORT_KEY, key) != SSH_OK) {  // the bind owns the key now
    record("", "error", "cannot load the proxy host key: " + ssh_error_line(bind.get()));
    return false;
  }
  ssh_bind_options_set(bind.get(), SSH_BIND_OPTIONS_PROCESS_CONFIG, &no);  // no system-wide libssh config
  ssh_bind_options_set(bind.get(), SSH_BIND_OPTIONS_LOG_VERBOSITY, &quiet);
  long handshake_s = std::max<long>(1, static_cast<long>((state_->options.handshake_timeout.count() + 999) / 1000));
  ssh_options_set(session_.get(), SSH_OPTIONS_TIMEOUT, &handshake_s);
  ssh_options_set(session_.get(), SSH_OPTIONS_LOG_VERBOSITY, &quiet);

  int fd = fd_.release();
  if (ssh_bind_accept_fd(bind.get(), session_.get(), fd) != SSH_OK) {
    if (ssh_get_fd(session_.get()) != fd) ::close(fd);  // libssh did not take it
    record("", "error", "cannot start the SSH server side: " + ssh_error_line(bind.get()));
    return false;
  }

  ssh_callbacks_init(&server_callbacks_);
  server_callbacks_.userdata = this;
  server_callbacks_.auth_none_function = &GuestConnection::on_auth_none;
  server_callbacks_.auth_pubkey_function = &GuestConnection::on_auth_pubkey;
  server_callbacks_.channel_open_request_session_function = &GuestConnection::on_channel_open;
  ssh_set_server_callbacks(session_.get(), &server_callbacks_);
  ssh_set_message_callback(session_.get(), &GuestConnection::on_message, this);
  // Never advertise password or keyboard-interactive: the guest must not be prompted.
  ssh_set_auth_methods(session_.get(), SSH_AUTH_METHOD_PUBLICKEY);

  // Blocking, bounded by SSH_OPTIONS_TIMEOUT over the whole exchange.
  if (ssh_handle_key_exchange(session_.get()) != SSH_OK) {
    if (!abort_.aborted())
      record("", "error", "SSH handshake with the guest failed: " + ssh_error_line(session_.get()));
    return false;
  }
  ssh_set_blocking(session_.get(), 0);
  event_.reset(ssh_event_new());
  if (!event_ || ssh_event_add_session(event_.get(), session_.get()) != SSH_OK) {
    record("", "error", "cannot poll the guest's SSH session");
    return false;
  }
  return true;
}

bool GuestConnection::guest_gone() const {
  return (ssh_get_status(session_.get()) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0;
}

void GuestConnection::serve() {
  const auto start = Clock::now();
  auto last_activity = start;
  bool any_request = false;

  while (!abort_.aborted()) {
    bool progress = false;
    // Index loop: callbacks run inside libssh calls below and may append bridges.
    for (std::size_t i = 0; i < bridges_.size(); ++i) {
      ChannelBridge& b = *bridges_[i];
      if (b.guest_overflowed) {
        record("", "error", "the guest sent more than its SSH window allows; connection closed");
        return;
      }
      if (b.pty_refusals > 0) {
        b.pty_refusals = 0;
        record_refusal("pty-req", "terminals are refused by the SSH proxy");
      }
      if (b.request != GuestRequest::None && !b.request_handled) {
        b.request_handled = true;
        any_request = true;
        handle_request(b);
        progress = true;
      }
      switch (b.pump()) {
        case ChannelBridge::PumpResult::Idle: break;
        case ChannelBridge::PumpResult::Progress: progress = true; break;
        case ChannelBridge::PumpResult::GuestFailed: return;
        case ChannelBridge::PumpResult::UpstreamFailed: {
          std::string where = b.upstream() ? ssh_error_line(b.upstream()->session()) : "closed";
          drop_upstream(b);
          b.refuse("gondolin: the upstream SSH connection failed: " + where);
          progress = true;
          break;
        }
      }
    }
    for (auto it = bridges_.begin(); it != bridges_.end();) {
      if ((*it)->finished()) {
        drop_upstream(**it);
        it = bridges_.erase(it);
      } else {
        ++it;
      }
    }
    if (guest_gone()) return;

    auto now = Clock::now();
    if (progress) last_activity = now;
    auto deadline =
        any_request ? last_activity + state_->options.idle_timeout : start + state_->options.handshake_timeout;
    if (now >= deadline) {
      record("", "error",
             any_request ? "no traffic for " + std::to_string(state_->options.idle_timeout.count() / 1000) +
                               " s; connection closed"
                         : "the guest sent no SSH request in time; connection closed");
      return;
    }
    auto wait = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now), kMaxPollWait);
    ssh_event_dopoll(event_.get(), progress ? 0 : static_cast<int>(wait.count()));
  }
}

void GuestConnection::handle_request(ChannelBridge& b) {
  switch (b.request) {
    case GuestRequest::Shell:
      deny(b, "shell", "interactive shells are refused",
           "gondolin: interactive shells are refused by the SSH proxy; only commands (such as git) are forwarded to " +
               host_);
      return;
    case GuestRequest::Subsystem:
      deny(b, "subsystem " + b.request_text, "SSH subsystems are refused",
           "gondolin: the SSH subsystem '" + b.request_text +
               "' is refused by the SSH proxy (no sftp); only commands (such as git) are forwarded");
      return;
    case GuestRequest::Exec: run_exec(b); return;
    case GuestRequest::None: return;
  }
}

void GuestConnection::run_exec(ChannelBridge& b) {
  std::string logged = summarize_exec_command(b.request_text).logged;
  if (auto why = policy_denial(); !why.empty()) return deny(b, logged, why, "gondolin: " + why);
  if (auto why = exec_command_problem(b.request_text); !why.empty())
    return deny(b, logged, why, "gondolin: refused SSH command: " + why);
  if (auto why = git_policy_problem(state_->options.git, host_, b.request_text); !why.empty())
    return deny(b, logged, why, "gondolin: " + why);

  const SshAllowedHost& allowed = *config::find_allowed_host(state_->options, host_, flow_.dest_port);
  const auto& users = state_->options.users;
  std::string user = users.count(host_) ? users.at(host_) : guest_user_;
  if (!config::valid_remote_user(user))
    return deny(b, logged, "invalid user name", "gondolin: refused SSH user name (use letters, digits, '.', '_', '-')");

  auto slot = state_->sessions.try_acquire();
  if (!slot) {
    std::string why = "too many concurrent SSH sessions (limit " + std::to_string(state_->sessions.limit()) + ")";
    return deny(b, logged, why, "gondolin: " + why);
  }

  SshUpstreamTarget target;
  target.host = allowed.host;
  target.port = allowed.port;
  target.user = user;
  if (auto k = state_->options.key_files.find(host_); k != state_->options.key_files.end()) target.key_file = k->second;
  if (auto p = state_->options.key_passphrases.find(host_); p != state_->options.key_passphrases.end())
    target.key_passphrase = p->second;
  target.agent_socket = state_->agent_socket;
  target.known_hosts_files = state_->options.known_hosts_files;
  target.connect_to_loopback = state_->loopback_hosts.count(host_) > 0;
  target.timeout = state_->options.handshake_timeout;
  target.stall_timeout = state_->options.idle_timeout;

  auto result = UpstreamExec::start(target, b.request_text, b.git_protocol, abort_);
  if (auto* failure = std::get_if<SshUpstreamFailure>(&result)) {
    std::string reason = without_prefix(failure->message);
    record(logged, failure->denied ? "deny" : "error", reason);
    b.refuse(failure->message);
    return;
  }
  auto upstream = std::move(std::get<std::unique_ptr<UpstreamExec>>(result));
  if (ssh_event_add_session(event_.get(), upstream->session()) != SSH_OK) {
    record(logged, "error", "cannot poll the upstream session");
    b.refuse("gondolin: internal error starting the upstream session");
    return;
  }
  // The user is logged only once it has gone upstream.
  SshAuditEvent e;
  e.flow = flow_.flow_id;
  e.host = host_;
  e.port = flow_.dest_port;
  e.user = user;
  e.command = logged;
  e.decision = "allow";
  e.upstream = target.display();
  state_->record(e);
  b.attach(std::move(upstream), std::move(*slot));
}

void GuestConnection::deny(ChannelBridge& b, const std::string& command, const std::string& reason,
                           const std::string& message) {
  record(command, "deny", reason);
  b.refuse(message);
}

void GuestConnection::drop_upstream(ChannelBridge& b) {
  auto up = b.take_upstream();
  if (up && event_) ssh_event_remove_session(event_.get(), up->session());
}

void GuestConnection::record(const std::string& command, const std::string& decision, const std::string& reason,
                             const std::string& upstream) {
  SshAuditEvent e;
  e.flow = flow_.flow_id;
  e.host = host_;
  e.port = flow_.dest_port;
  e.command = command;
  e.decision = decision;
  e.reason = reason;
  e.upstream = upstream;
  state_->record(e);
}

void GuestConnection::record_refusal(const std::string& what, const std::string& reason) {
  // A guest can repeat these as fast as it likes: log the first few only.
  if (refusals_logged_ >= kMaxRefusalsLogged) return;
  ++refusals_logged_;
  record(what, "deny", reason);
}

int GuestConnection::on_auth_none(ssh_session, const char* user, void* self) {
  auto* c = static_cast<GuestConnection*>(self);
  c->guest_user_ = user ? std::string(user, ::strnlen(user, 65)) : "";
  c->authenticated_ = true;
  return SSH_AUTH_SUCCESS;
}

int GuestConnection::on_auth_pubkey(ssh_session, const char* user, ssh_key_struct*, char state, void* self) {
  // The guest's own keys mean nothing upstream; accept whichever it offers.
  if (state == SSH_PUBLICKEY_STATE_NONE) return SSH_AUTH_SUCCESS;
  if (state != SSH_PUBLICKEY_STATE_VALID) return SSH_AUTH_DENIED;
  return on_auth_none(nullptr, user, self);
}

ssh_channel GuestConnection::on_channel_open(ssh_session session, void* self) {
  auto* c = static_cast<GuestConnection*>(self);
  if (!c->authenticated_ || c->bridges_.size() >= kMaxChannelsPerConnection) return nullptr;
  ssh_channel ch = ssh_channel_new(session);
  if (!ch) return nullptr;
  c->bridges_.push_back(std::make_unique<ChannelBridge>(ch));
  return ch;
}

int GuestConnection::on_message(ssh_session, ssh_message msg, void* self) {
  auto* c = static_cast<GuestConnection*>(self);
  int type = ssh_message_type(msg);
  int sub = ssh_message_subtype(msg);
  std::string what;
  if (type == SSH_REQUEST_CHANNEL_OPEN && sub == SSH_CHANNEL_DIRECT_TCPIP) {
    const char* dest = ssh_message_channel_request_open_destination(msg);
    what = "direct-tcpip " + std::string(dest ? dest : "?").substr(0, 255) + ":" +
           std::to_string(ssh_message_channel_request_open_destination_port(msg));
  } else if (type == SSH_REQUEST_CHANNEL_OPEN) {
    what = "channel-open type " + std::to_string(sub);
  } else if (type == SSH_REQUEST_GLOBAL && sub == SSH_GLOBAL_REQUEST_TCPIP_FORWARD) {
    const char* addr = ssh_message_global_request_address(msg);
    what = "tcpip-forward " + std::string(addr ? addr : "?").substr(0, 255) + ":" +
           std::to_string(ssh_message_global_request_port(msg));
  } else if (type == SSH_REQUEST_CHANNEL && sub == SSH_CHANNEL_REQUEST_X11) {
    what = "x11-req";
  }
  if (!what.empty()) c->record_refusal(what, "forwarding is refused by the SSH proxy");
  return 1;  // libssh sends its default reply: a refusal
}

}  // namespace gondolin::egress
