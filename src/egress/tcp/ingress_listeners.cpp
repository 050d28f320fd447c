#include "egress/tcp/ingress_listeners.h"

#include <boost/asio/local/stream_protocol.hpp>

#include "config/tcp_rules.h"
#include "egress/tcp/byte_relay.h"
#include "gondolin/error.h"
#include "util/logging.h"

namespace gondolin::egress {

namespace ip = boost::asio::ip;

struct IngressListeners::Listener {
  Listener(boost::asio::io_context& io, Ingress i) : ingress(std::move(i)), acceptor(io) {}
  Ingress ingress;
  ip::tcp::acceptor acceptor;
};

namespace {

std::string endpoint_text(const ip::tcp::endpoint& e) {
  return e.address().is_v6() ? "[" + e.address().to_string() + "]:" + std::to_string(e.port())
                             : e.address().to_string() + ":" + std::to_string(e.port());
}

}  // namespace

IngressListeners::IngressListeners(std::shared_ptr<EgressContext> ctx, const std::vector<Ingress>& ingress)
    : ctx_(std::move(ctx)) {
  for (const auto& in : ingress) {
    auto l = std::make_shared<Listener>(ctx_->io, in);
    const ip::tcp::endpoint at(ip::make_address(in.host_address), in.host_port);
    boost::system::error_code ec;
    l->acceptor.open(at.protocol(), ec);
    // Lets a restarted session take the port back from TIME_WAIT; a port
    // somebody listens on stays busy (Linux semantics of SO_REUSEADDR).
    if (!ec) l->acceptor.set_option(ip::tcp::acceptor::reuse_address(true), ec);
    if (!ec) l->acceptor.bind(at, ec);
    if (!ec) l->acceptor.listen(ip::tcp::socket::max_listen_connections, ec);
    if (ec)
      throw Error(ErrorKind::Io,
                  "--listen " + config::describe(in) + ": cannot listen on " + endpoint_text(at) + ": " + ec.message());
    if (!at.address().is_loopback())
      log().warn("--listen {}: reachable from other machines (bound to {})", config::describe(in), endpoint_text(at));
    listeners_.push_back(std::move(l));
  }
}

IngressListeners::~IngressListeners() {
  *alive_ = false;
  for (auto& l : listeners_) {
    boost::system::error_code ignored;
    l->acceptor.close(ignored);
  }
}

std::vector<ip::tcp::endpoint> IngressListeners::local_endpoints() const {
  std::vector<ip::tcp::endpoint> out;
  for (const auto& l : listeners_) {
    boost::system::error_code ec;
    out.push_back(l->acceptor.local_endpoint(ec));
  }
  return out;
}

void IngressListeners::start(GuestPortDialer dial) {
  const bool first = !dial_;
  dial_ = std::move(dial);
  if (!first) return;
  for (const auto& l : listeners_) accept_next(l);
}

void IngressListeners::accept_next(const std::shared_ptr<Listener>& l) {
  l->acceptor.async_accept(
      [this, l, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec, ip::tcp::socket client) {
        if (alive.expired() || ec == boost::asio::error::operation_aborted) return;
        if (!ec)
          forward(*l, std::move(client));
        else
          log().debug("ingress: accept on {} failed: {}", config::describe(l->ingress), ec.message());
        accept_next(l);
      });
}

void IngressListeners::forward(const Listener& l, ip::tcp::socket client) {
  EgressEvent e = EgressEvent::for_flow(next_id_++, "ingress", "guest", l.ingress.guest_port,
                                        "listen " + config::describe(l.ingress));
  boost::system::error_code ec;
  e.peer = endpoint_text(client.remote_endpoint(ec));
  if (*open_ >= ctx_->options.max_ingress_connections) {
    ctx_->log.record(e.decided("deny", "too many ingress connections at once (limit " +
                                           std::to_string(ctx_->options.max_ingress_connections) + ")"));
    return;  // `client` closes here
  }
  std::string why;
  std::optional<UniqueFd> fd = dial_(l.ingress.guest_port, why);
  boost::asio::local::stream_protocol::socket guest(ctx_->io);
  if (fd) guest.assign(boost::asio::local::stream_protocol(), fd->release(), ec);
  if (!fd || ec) {
    ctx_->log.record(e.decided("error", fd ? ec.message() : why));
    return;
  }
  client.set_option(ip::tcp::no_delay(true), ec);
  e = e.decided("allow", "", "open");
  ctx_->log.record(e);
  ++*open_;
  ByteRelay::start(
      make_plain_stream(std::move(client)), make_plain_stream(std::move(guest)), std::string(),
      [ctx = ctx_, e, open = open_](const ByteRelay::Totals& t) {
        --*open;
        ctx->log.record(e.closed(t.a_to_b, t.b_to_a, t.error));  // a: the host's client, b: the guest
      },
      ByteRelay::IdleTimeout{ctx_->io.get_executor(), ctx_->options.tcp_idle_timeout});
}

}  // namespace gondolin::egress
