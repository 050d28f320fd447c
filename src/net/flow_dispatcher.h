// Hands each terminated guest TCP flow to egress: reads its first bytes (with
// a short timeout and a size bound), classifies them, and calls the matching
// EgressHandlers method with the bytes already read.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <unordered_set>

#include "net/flow_classifier.h"
#include "net/guest_flow.h"

namespace gondolin::net {

class FlowDispatcher {
 public:
  struct Limits {
    // Clients speak first on every protocol egress handles; a flow that stays
    // silent this long is Other (refused, not left hanging). Generous because
    // TLS clients under TCG take seconds before their ClientHello (GnuTLS
    // loading the trust store: 2-3 s measured for git).
    std::chrono::milliseconds first_bytes_timeout{10'000};
    std::size_t max_prefix = kMaxClassifyPrefix;
  };

  FlowDispatcher(boost::asio::io_context& io, EgressHandlers& handlers, Limits limits);
  FlowDispatcher(boost::asio::io_context& io, EgressHandlers& handlers) : FlowDispatcher(io, handlers, Limits{}) {}
  ~FlowDispatcher();  // flows still being classified are closed
  FlowDispatcher(const FlowDispatcher&) = delete;
  FlowDispatcher& operator=(const FlowDispatcher&) = delete;

  void dispatch(GuestFlowInfo info, boost::asio::local::stream_protocol::socket socket);
  std::size_t classifying() const { return pending_.size(); }

 private:
  struct Pending;
  void read_more(const std::shared_ptr<Pending>& p);
  void hand_over(const std::shared_ptr<Pending>& p);

  boost::asio::io_context& io_;
  EgressHandlers& handlers_;
  Limits limits_;
  std::unordered_set<std::shared_ptr<Pending>> pending_;
};

}  // namespace gondolin::net
