// The DHCP server: what the guest's client is offered and acknowledged, and
// what malformed or foreign requests get (nothing).
#include <gtest/gtest.h>

#include <map>

#include "net/dhcp_server.h"
#include "test_frames.h"

using namespace gondolin::net;
using namespace gondolin::net::test;

namespace {

DhcpLease lease() {
  DhcpLease l;
  l.client_mac = layout().guest_mac;
  l.client = layout().guest;
  l.server = layout().gateway;
  l.netmask = layout().netmask;
  l.router = layout().gateway;
  l.dns = layout().gateway;
  l.mtu = 16384;
  return l;
}

struct Reply {
  std::uint8_t op = 0;
  std::uint32_t xid = 0;
  Ipv4 yiaddr{};
  std::map<std::uint8_t, std::vector<std::uint8_t>> options;
};

Reply decode_reply(const std::vector<std::uint8_t>& p) {
  Reply r;
  EXPECT_GE(p.size(), 300u);
  r.op = p[0];
  r.xid = load_u32(&p[4]);
  std::copy(p.begin() + 16, p.begin() + 20, r.yiaddr.begin());
  EXPECT_EQ(load_u32(&p[236]), 0x63825363u);
  for (std::size_t i = 240; i < p.size() && p[i] != 255;) {
    if (p[i] == 0) {
      ++i;
      continue;
    }
    r.options[p[i]] = std::vector<std::uint8_t>(p.begin() + static_cast<long>(i) + 2,
                                                p.begin() + static_cast<long>(i) + 2 + p[i + 1]);
    i += 2u + p[i + 1];
  }
  return r;
}

}  // namespace

TEST(NetDhcp, DiscoverGetsOfferWithRouterDnsAndMtu) {
  auto msg = parse_dhcp_request(dhcp_request_bytes(1, layout().guest_mac, 0xabcdef01));
  ASSERT_TRUE(msg) << msg.error();
  EXPECT_EQ(msg->type, DhcpType::Discover);
  auto reply = answer_dhcp(msg.value(), lease());
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->type, DhcpType::Offer);
  Reply r = decode_reply(reply->payload);
  EXPECT_EQ(r.op, 2);
  EXPECT_EQ(r.xid, 0xabcdef01u);
  EXPECT_EQ(r.yiaddr, layout().guest);
  EXPECT_EQ(r.options[53], std::vector<std::uint8_t>{2});
  EXPECT_EQ(r.options[1], (std::vector<std::uint8_t>{255, 255, 255, 0}));
  EXPECT_EQ(r.options[3], (std::vector<std::uint8_t>{10, 0, 2, 2}));
  EXPECT_EQ(r.options[6], (std::vector<std::uint8_t>{10, 0, 2, 2}));
  EXPECT_EQ(r.options[54], (std::vector<std::uint8_t>{10, 0, 2, 2}));
  EXPECT_EQ(r.options[26], (std::vector<std::uint8_t>{0x40, 0x00}));
  EXPECT_EQ(r.options[51].size(), 4u);
}

TEST(NetDhcp, RequestForOurAddressIsAckedOtherAddressNaked) {
  Ipv4 ours = layout().guest;
  auto ack = answer_dhcp(parse_dhcp_request(dhcp_request_bytes(3, layout().guest_mac, 1, &ours)).value(), lease());
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->type, DhcpType::Ack);
  EXPECT_EQ(decode_reply(ack->payload).yiaddr, layout().guest);

  Ipv4 other{10, 0, 2, 99};
  auto nak = answer_dhcp(parse_dhcp_request(dhcp_request_bytes(3, layout().guest_mac, 1, &other)).value(), lease());
  ASSERT_TRUE(nak);
  EXPECT_EQ(nak->type, DhcpType::Nak);
  Reply r = decode_reply(nak->payload);
  EXPECT_EQ(r.yiaddr, kIpv4Any);
  EXPECT_FALSE(r.options.count(3));
}

TEST(NetDhcp, ForeignClientsAndOtherMessagesGetNothing) {
  Mac stranger{0x02, 0, 0, 0, 0, 1};
  EXPECT_FALSE(answer_dhcp(parse_dhcp_request(dhcp_request_bytes(1, stranger)).value(), lease()));
  for (std::uint8_t type : {std::uint8_t{4}, std::uint8_t{7}, std::uint8_t{8}})  // decline, release, inform
    EXPECT_FALSE(answer_dhcp(parse_dhcp_request(dhcp_request_bytes(type, layout().guest_mac)).value(), lease()));
}

TEST(NetDhcp, RejectsMalformedMessages) {
  auto good = dhcp_request_bytes(1, layout().guest_mac);
  EXPECT_STREQ(parse_dhcp_request(Bytes(good).first(100)).error(), "short DHCP message");

  auto reply_op = good;
  reply_op[0] = 2;
  EXPECT_STREQ(parse_dhcp_request(reply_op).error(), "not a BOOTREQUEST");

  auto no_cookie = good;
  no_cookie[236] = 0;
  EXPECT_STREQ(parse_dhcp_request(no_cookie).error(), "no DHCP magic cookie");

  auto no_end = good;
  no_end.pop_back();
  EXPECT_STREQ(parse_dhcp_request(no_end).error(), "DHCP options without an end marker");

  auto overrun = good;
  overrun.pop_back();
  overrun.push_back(12);   // hostname option
  overrun.push_back(200);  // claims 200 bytes that are not there
  overrun.push_back('x');
  EXPECT_STREQ(parse_dhcp_request(overrun).error(), "DHCP option overruns the message");

  auto bad_type = good;
  bad_type[242] = 42;
  EXPECT_STREQ(parse_dhcp_request(bad_type).error(), "bad DHCP message type");

  auto token_ring = good;
  token_ring[1] = 6;
  EXPECT_STREQ(parse_dhcp_request(token_ring).error(), "DHCP hardware type is not Ethernet");

  std::vector<std::uint8_t> untyped(good.begin(), good.begin() + 240);
  untyped.push_back(255);
  EXPECT_STREQ(parse_dhcp_request(untyped).error(), "DHCP message without a type");
}
