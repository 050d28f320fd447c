#include "egress/ssh/ssh_proxy.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "config/ssh_rules.h"
#include "egress/ssh/socket_abort_switch.h"
#include "egress/ssh/ssh_guest_connection.h"
#include "egress/ssh/ssh_guest_relay.h"
#include "egress/ssh/ssh_proxy_state.h"
#include "gondolin/error.h"
#include "util/logging.h"

namespace gondolin::egress {
namespace {

std::string dotted(const net::Ipv4& a) {
  return std::to_string(a[0]) + "." + std::to_string(a[1]) + "." + std::to_string(a[2]) + "." + std::to_string(a[3]);
}

ProxyHostKey load_host_key(const SshOptions& options) {
  return ProxyHostKey::load_or_create(options.host_key_dir.empty() ? ProxyHostKey::default_dir()
                                                                   : std::filesystem::path(options.host_key_dir));
}

}  // namespace

void SshProxyState::record(const SshAuditEvent& event) const {
  if (audit)
    audit->record(event);
  else
    log().debug("ssh: {}", to_json_line(event));
}

void SshProxyState::set_denied(const std::vector<std::string>& patterns) {
  HostPatternList list;
  for (const auto& p : patterns) list.add(p);
  std::lock_guard lock(deny_mutex_);
  deny_ = std::move(list);
}

std::string SshProxyState::denied(const std::string& host) const {
  std::lock_guard lock(deny_mutex_);
  const HostPattern* p = deny_.match(host);
  return p ? p->text() : std::string();
}

void SshProxy::set_denied_hosts(const std::vector<std::string>& patterns) { state_->set_denied(patterns); }

SshProxy::SshProxy(boost::asio::io_context& io, SshProxyConfig config) : io_(io) {
  config::validate_ssh_options(config.options);
  ssh_init();  // idempotent; libssh's global state before any thread uses it
  std::set<std::string> loopback;
  for (const auto& h : config.test_loopback_hosts) loopback.insert(config::normalize_host_name(h));
  std::string agent = config::effective_agent_socket(config.options);
  ProxyHostKey key = load_host_key(config.options);
  state_ = std::make_shared<SshProxyState>(std::move(config.options), std::move(key), std::move(config.audit),
                                           std::move(agent), std::move(loopback));
}

SshProxy::~SshProxy() {
  std::lock_guard lock(mutex_);
  for (auto& [id, w] : workers_) w.abort->abort();
  for (auto& [id, w] : workers_)
    if (w.thread.joinable()) w.thread.join();
  workers_.clear();
}

void SshProxy::reap_finished_locked() {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->second.done->load()) {
      it->second.thread.join();
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

void SshProxy::handle(net::GuestFlow flow) {
  SshFlowFacts facts;
  facts.flow_id = flow.info.flow_id;
  facts.hostname = flow.info.hostname;
  facts.dest_address = dotted(flow.info.dest_ip);
  facts.dest_port = flow.info.dest_port;

  auto refuse = [&](const std::string& decision, const std::string& reason) {
    SshAuditEvent e;
    e.flow = facts.flow_id;
    e.host = facts.hostname ? config::normalize_host_name(*facts.hostname) : facts.dest_address;
    e.port = facts.dest_port;
    e.decision = decision;
    e.reason = reason;
    state_->record(e);
    boost::system::error_code ignored;
    flow.socket.close(ignored);
  };

  std::lock_guard lock(mutex_);
  reap_finished_locked();
  if (workers_.size() >= state_->options.max_connections)
    return refuse(
        "deny", "too many concurrent SSH connections (limit " + std::to_string(state_->options.max_connections) + ")");

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return refuse("error", std::string("socketpair: ") + std::strerror(errno));
  UniqueFd libssh_end(sv[1]);
  boost::asio::local::stream_protocol::socket relay_end(io_);
  boost::system::error_code ec;
  relay_end.assign(boost::asio::local::stream_protocol(), sv[0], ec);
  if (ec) {
    ::close(sv[0]);
    return refuse("error", "cannot relay the flow: " + ec.message());
  }
  // libssh writes with blocking sends: a guest that stops reading must not pin the thread forever.
  auto stall = state_->options.idle_timeout;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(stall.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((stall.count() % 1000) * 1000);
  ::setsockopt(libssh_end.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  Worker w;
  w.abort = std::make_shared<SocketAbortSwitch>();
  w.done = std::make_shared<std::atomic<bool>>(false);
  try {
    w.thread = std::thread([state = std::shared_ptr<const SshProxyState>(state_), facts, fd = std::move(libssh_end),
                            abort = w.abort, done = w.done]() mutable {
      {
        GuestConnection connection(std::move(state), std::move(facts), std::move(fd), *abort);
        connection.run();
      }
      done->store(true);
    });
  } catch (const std::system_error& e) {
    return refuse("error", std::string("cannot start a thread: ") + e.what());
  }
  workers_.emplace(next_worker_++, std::move(w));
  start_guest_relay(std::move(flow.socket), std::move(flow.prefix), std::move(relay_end));
}

std::vector<std::string> SshProxy::guest_known_hosts() const {
  return state_->host_key.guest_known_hosts(state_->options.allowed_hosts);
}

const ProxyHostKey& SshProxy::host_key() const { return state_->host_key; }

std::vector<std::string> ssh_guest_known_hosts(const SshOptions& options) {
  return load_host_key(options).guest_known_hosts(options.allowed_hosts);
}

}  // namespace gondolin::egress
