#include "net/flow_dispatcher.h"

#include <boost/asio/steady_timer.hpp>

#include "util/logging.h"

namespace gondolin::net {

namespace asio = boost::asio;

struct FlowDispatcher::Pending {
  Pending(asio::io_context& io, GuestFlowInfo i, asio::local::stream_protocol::socket s)
      : info(std::move(i)), socket(std::move(s)), timer(io) {}
  GuestFlowInfo info;
  asio::local::stream_protocol::socket socket;
  asio::steady_timer timer;
  std::string prefix;
  std::array<char, 2048> chunk{};
  bool out_of_time = false;
  bool done = false;  // handed over or dropped
};

FlowDispatcher::FlowDispatcher(asio::io_context& io, EgressHandlers& handlers, Limits limits)
    : io_(io), handlers_(handlers), limits_(limits) {}

FlowDispatcher::~FlowDispatcher() {
  for (const auto& p : pending_) {
    p->done = true;
    boost::system::error_code ignored;
    p->socket.close(ignored);
    p->timer.cancel();
  }
}

void FlowDispatcher::dispatch(GuestFlowInfo info, asio::local::stream_protocol::socket socket) {
  if (handlers_.is_mapped(info)) {
    log().debug("net: flow {} to {}:{} ({}) is mapped", info.flow_id, to_string(info.dest_ip), info.dest_port,
                info.hostname.value_or("?"));
    GuestFlow flow{std::move(info), FlowKind::Other, std::string(), std::move(socket)};
    try {
      handlers_.on_mapped(std::move(flow));
    } catch (const std::exception& e) {
      log().warn("net: egress handler failed: {}", e.what());
    }
    return;
  }
  auto p = std::make_shared<Pending>(io_, std::move(info), std::move(socket));
  p->prefix.reserve(512);
  pending_.insert(p);
  p->timer.expires_after(limits_.first_bytes_timeout);
  p->timer.async_wait([p](const boost::system::error_code& ec) {
    if (ec || p->done) return;
    // The read in progress completes with operation_aborted and decides.
    p->out_of_time = true;
    boost::system::error_code ignored;
    p->socket.cancel(ignored);
  });
  read_more(p);
}

void FlowDispatcher::read_more(const std::shared_ptr<Pending>& p) {
  const std::size_t room = std::min(p->chunk.size(), limits_.max_prefix - p->prefix.size());
  p->socket.async_read_some(
      asio::buffer(p->chunk.data(), room), [this, p](const boost::system::error_code& ec, std::size_t n) {
        if (p->done) return;
        p->prefix.append(p->chunk.data(), n);
        const Bytes bytes(reinterpret_cast<const std::uint8_t*>(p->prefix.data()), p->prefix.size());
        const bool finished = ec == asio::error::eof || p->out_of_time || p->prefix.size() >= limits_.max_prefix;
        if (ec && ec != asio::error::eof && ec != asio::error::operation_aborted) {
          // The guest reset the connection before saying anything usable.
          log().debug("net: flow {} failed while classifying: {}", p->info.flow_id, ec.message());
          p->done = true;
          p->timer.cancel();
          pending_.erase(p);
          return;
        }
        if (!finished && classify_prefix(bytes) == PrefixVerdict::NeedMore) return read_more(p);
        hand_over(p);
      });
}

void FlowDispatcher::hand_over(const std::shared_ptr<Pending>& p) {
  p->done = true;
  p->timer.cancel();
  pending_.erase(p);
  const Bytes bytes(reinterpret_cast<const std::uint8_t*>(p->prefix.data()), p->prefix.size());
  GuestFlow flow{std::move(p->info), final_kind(bytes), std::move(p->prefix), std::move(p->socket)};
  log().debug("net: flow {} to {}:{}{} is {} ({} bytes read)", flow.info.flow_id, to_string(flow.info.dest_ip),
              flow.info.dest_port, flow.info.hostname ? " (" + *flow.info.hostname + ")" : std::string(),
              to_string(flow.kind), flow.prefix.size());
  try {
    switch (flow.kind) {
      case FlowKind::Http: handlers_.on_http(std::move(flow)); break;
      case FlowKind::Tls: handlers_.on_tls(std::move(flow)); break;
      case FlowKind::Ssh: handlers_.on_ssh(std::move(flow)); break;
      case FlowKind::Other: handlers_.on_other(std::move(flow)); break;
    }
  } catch (const std::exception& e) {
    // The flow was moved into the handler, whose unwinding closed it.
    log().warn("net: egress handler failed: {}", e.what());
  }
}

}  // namespace gondolin::net
