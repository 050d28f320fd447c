// Forwarding of guest DNS queries to real resolvers on the host, for the
// `trusted` and `open` DNS modes. Each query gets its own connected UDP
// socket (a fresh source port; replies from anyone else are never read),
// a timeout, and at most one retry at the next server. In-flight queries
// are bounded; beyond that new ones are dropped and the guest retries.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "net/dns_message.h"

namespace gondolin::net {

using DnsServer = boost::asio::ip::udp::endpoint;

// The `nameserver` lines of a resolv.conf (at most three, as libc uses).
std::vector<DnsServer> resolv_conf_servers(const std::string& path = "/etc/resolv.conf");

class DnsForwarder {
 public:
  using ReplySink = std::function<void(std::vector<std::uint8_t> response)>;
  static constexpr std::size_t kMaxInFlight = 64;
  static constexpr std::chrono::milliseconds kTimeout{2000};

  DnsForwarder(boost::asio::io_context& io, std::vector<DnsServer> servers);
  ~DnsForwarder();
  DnsForwarder(const DnsForwarder&) = delete;
  DnsForwarder& operator=(const DnsForwarder&) = delete;

  // Trusted mode: sends a fresh query for exactly `query`'s question and
  // relays only a reply to that question (ID restored to the guest's).
  // No reply arrives if every server stays silent: the guest gets SERVFAIL.
  void forward_checked(const DnsQuery& query, ReplySink sink);
  // Open mode: the guest's message as sent; any reply with its ID is relayed.
  void forward_raw(Bytes message, ReplySink sink);
  std::size_t in_flight() const { return queries_.size(); }

 private:
  struct Query;
  void start(std::shared_ptr<Query> q);
  void send(const std::shared_ptr<Query>& q);
  void receive(const std::shared_ptr<Query>& q);
  void finish(const std::shared_ptr<Query>& q, std::vector<std::uint8_t> reply);
  bool acceptable(const Query& q, Bytes reply) const;

  boost::asio::io_context& io_;
  std::vector<DnsServer> servers_;
  std::unordered_set<std::shared_ptr<Query>> queries_;
};

}  // namespace gondolin::net
