// Forwarding for the trusted and open DNS modes, against a real UDP
// "resolver" on loopback.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include "config/dns_rules.h"
#include "gondolin/error.h"
#include "net/dns_forwarder.h"
#include "test_frames.h"

using namespace gondolin;
using namespace gondolin::net;
using namespace gondolin::net::test;
namespace asio = boost::asio;
using asio::ip::udp;

namespace {

struct Resolver {
  asio::io_context& io;
  udp::socket socket;
  std::vector<std::vector<std::uint8_t>> queries;
  std::function<std::vector<std::vector<std::uint8_t>>(const std::vector<std::uint8_t>&)> respond;
  std::array<std::uint8_t, 4096> buf{};
  udp::endpoint from;

  explicit Resolver(asio::io_context& i) : io(i), socket(i, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    receive();
  }
  void receive() {
    socket.async_receive_from(asio::buffer(buf), from, [this](const boost::system::error_code& ec, std::size_t n) {
      if (ec) return;
      queries.emplace_back(buf.begin(), buf.begin() + static_cast<long>(n));
      if (respond)
        for (const auto& r : respond(queries.back())) socket.send_to(asio::buffer(r), from);
      receive();
    });
  }
  DnsServer endpoint() const { return socket.local_endpoint(); }
};

std::vector<std::uint8_t> answer_for(const std::vector<std::uint8_t>& query, const std::string& name_override = {}) {
  auto q = parse_dns_query(query);
  EXPECT_TRUE(q);
  DnsQuery copy = q.value();
  if (!name_override.empty()) copy.question.name = name_override;
  std::vector<DnsRecord> a{{kDnsTypeA, 30, {93, 184, 216, 34}}};
  return build_dns_response(copy, DnsRcode::NoError, a);
}

}  // namespace

TEST(NetDnsForwarder, ReadsResolvConf) {
  char path[] = "/tmp/gondolin-resolv-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text =
      "# comment\nsearch example\nnameserver 192.0.2.53\nnameserver ::1\nnameserver bogus\n"
      "nameserver 192.0.2.54\nnameserver 192.0.2.55\n";
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  auto servers = resolv_conf_servers(path);
  ::unlink(path);
  ASSERT_EQ(servers.size(), 3u);
  EXPECT_EQ(servers[0].address().to_string(), "192.0.2.53");
  EXPECT_EQ(servers[1].address().to_string(), "::1");
  EXPECT_EQ(servers[2].port(), 53);
  EXPECT_THROW(config::parse_dns_servers({"1.2.3"}), gondolin::Error);
  EXPECT_THROW(config::parse_dns_servers({"0.0.0.0"}), gondolin::Error);
  EXPECT_EQ(config::parse_dns_servers({"2001:db8::53"}).size(), 1u);
}

TEST(NetDnsForwarder, TrustedModeSendsAFreshQueryAndRelaysOnlyTheMatchingAnswer) {
  asio::io_context io;
  Resolver resolver(io);
  // A wrong answer (other name) arrives first; it must be ignored.
  resolver.respond = [](const std::vector<std::uint8_t>& q) {
    return std::vector<std::vector<std::uint8_t>>{answer_for(q, "evil.test"), answer_for(q)};
  };
  DnsForwarder fwd(io, {resolver.endpoint()});
  auto guest_query = parse_dns_query(dns_query_bytes(0x7777, {"Example", "com"}, kDnsTypeA));
  ASSERT_TRUE(guest_query);
  std::vector<std::uint8_t> relayed;
  fwd.forward_checked(guest_query.value(), [&](std::vector<std::uint8_t> r) { relayed = std::move(r); });
  io.run_for(std::chrono::milliseconds(300));

  ASSERT_EQ(resolver.queries.size(), 1u);
  auto sent = parse_dns_query(resolver.queries[0]);
  ASSERT_TRUE(sent);
  EXPECT_NE(sent->header.id, 0x7777);  // our own id, not the guest's
  EXPECT_EQ(sent->question.name, "Example.com");
  ASSERT_FALSE(relayed.empty());
  auto head = parse_dns_response_head(relayed);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->header.id, 0x7777);
  EXPECT_EQ(head->question.name, "Example.com");
  EXPECT_EQ(relayed[relayed.size() - 4], 93);
  EXPECT_EQ(fwd.in_flight(), 0u);
}

TEST(NetDnsForwarder, TrustedModeAnswersServfailWhenTheResolverIsSilent) {
  asio::io_context io;
  Resolver resolver(io);  // never answers
  DnsForwarder fwd(io, {resolver.endpoint()});
  auto q = parse_dns_query(dns_query_bytes(5, {"example", "com"}, kDnsTypeA));
  std::vector<std::uint8_t> relayed;
  fwd.forward_checked(q.value(), [&](std::vector<std::uint8_t> r) { relayed = std::move(r); });
  io.run_for(DnsForwarder::kTimeout + std::chrono::milliseconds(300));
  ASSERT_FALSE(relayed.empty());
  auto h = parse_dns_header(relayed);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->id, 5);
  EXPECT_EQ(h->rcode(), static_cast<std::uint8_t>(DnsRcode::ServFail));
}

TEST(NetDnsForwarder, OpenModeForwardsTheBytesAsSent) {
  asio::io_context io;
  Resolver resolver(io);
  resolver.respond = [](const std::vector<std::uint8_t>& q) {
    auto r = q;
    r[2] |= 0x80;
    return std::vector<std::vector<std::uint8_t>>{r};
  };
  DnsForwarder fwd(io, {resolver.endpoint()});
  // Not even a well-formed query: open mode does not care.
  std::vector<std::uint8_t> odd = {0x12, 0x34, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0xde, 0xad};
  std::vector<std::uint8_t> relayed;
  fwd.forward_raw(odd, [&](std::vector<std::uint8_t> r) { relayed = std::move(r); });
  io.run_for(std::chrono::milliseconds(300));
  ASSERT_EQ(resolver.queries.size(), 1u);
  EXPECT_EQ(resolver.queries[0], odd);
  ASSERT_EQ(relayed.size(), odd.size());
  EXPECT_EQ(load_u16(relayed.data()), 0x1234);
}

TEST(NetDnsForwarder, BoundsQueriesInFlight) {
  asio::io_context io;
  Resolver resolver(io);
  DnsForwarder fwd(io, {resolver.endpoint()});
  auto q = parse_dns_query(dns_query_bytes(5, {"example", "com"}, kDnsTypeA));
  for (int i = 0; i < 200; ++i) fwd.forward_checked(q.value(), [](std::vector<std::uint8_t>) {});
  EXPECT_EQ(fwd.in_flight(), DnsForwarder::kMaxInFlight);
}
