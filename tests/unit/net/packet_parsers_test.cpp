// Ethernet, ARP, IPv4, UDP, ICMP and TCP: what the stack accepts from the
// guest and what it builds, including malformed input.
#include <gtest/gtest.h>

#include "test_frames.h"

using namespace gondolin::net;
using namespace gondolin::net::test;

namespace {

Bytes ip_payload(const Frame& f) { return Bytes(f).subspan(kEthernetHeaderSize); }

}  // namespace

TEST(NetChecksum, MatchesRfc1071Example) {
  // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2 (complement 0x220d).
  const std::uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(internet_checksum(data), 0x220d);
  const std::uint8_t odd[] = {0x01};
  EXPECT_EQ(internet_checksum(odd), static_cast<std::uint16_t>(~0x0100 & 0xffff));
}

TEST(NetAddress, ParsesOnlyPlainDottedQuads) {
  Ipv4 a{};
  EXPECT_TRUE(parse_ipv4("10.0.2.2", a));
  EXPECT_EQ(a, (Ipv4{10, 0, 2, 2}));
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "1.2.3.4 ", "a.b.c.d"})
    EXPECT_FALSE(parse_ipv4(bad, a)) << bad;
  EXPECT_EQ(to_string(Ipv4{198, 18, 0, 1}), "198.18.0.1");
  Mac m{};
  EXPECT_TRUE(parse_mac("52:54:00:0a:bc:ff", m));
  EXPECT_EQ(m, (Mac{0x52, 0x54, 0x00, 0x0a, 0xbc, 0xff}));
  EXPECT_EQ(to_string(m), "52:54:00:0a:bc:ff");
  for (const char* bad : {"", "52:54:00:0a:bc", "52:54:00:0a:bc:ff:", "52-54-00-0a-bc-ff", "52:54:00:0A:bc:ff",
                          "52:54:00:0g:bc:ff", "52:54:00:0a:bcff0"})
    EXPECT_FALSE(parse_mac(bad, m)) << bad;
  EXPECT_FALSE(is_unicast(Ipv4{224, 0, 0, 1}));
  EXPECT_FALSE(is_unicast(Ipv4{0, 1, 2, 3}));
  EXPECT_FALSE(is_unicast(kIpv4Broadcast));
  EXPECT_TRUE(is_unicast(Ipv4{93, 184, 216, 34}));
}

TEST(NetEthernet, ParsesHeaderAndRejectsShortOr8023Frames) {
  const std::uint8_t payload[] = {1, 2, 3};
  Frame f = guest_udp(layout().gateway, 1000, 53, payload);
  auto eth = parse_ethernet(f);
  ASSERT_TRUE(eth);
  EXPECT_EQ(eth->src, layout().guest_mac);
  EXPECT_EQ(eth->dst, layout().gateway_mac);
  EXPECT_EQ(eth->ether_type, kEtherTypeIpv4);
  EXPECT_FALSE(parse_ethernet(Bytes(f).first(13)));
  Frame length_field = f;
  length_field[12] = 0x00;
  length_field[13] = 0x40;
  EXPECT_FALSE(parse_ethernet(length_field));
}

TEST(NetArp, RoundTripsAndRejectsOtherHardware) {
  ArpPacket p{kArpRequest, layout().guest_mac, layout().guest, Mac{}, layout().gateway};
  Frame f = build_arp_frame(kMacBroadcast, p);
  auto eth = parse_ethernet(f);
  ASSERT_TRUE(eth);
  EXPECT_EQ(eth->ether_type, kEtherTypeArp);
  auto back = parse_arp(eth->payload);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->operation, kArpRequest);
  EXPECT_EQ(back->sender_ip, layout().guest);
  EXPECT_EQ(back->target_ip, layout().gateway);

  Frame bad = f;
  bad[kEthernetHeaderSize + 1] = 6;  // htype 6 (IEEE 802)
  EXPECT_FALSE(parse_arp(parse_ethernet(bad)->payload));
  EXPECT_FALSE(parse_arp(eth->payload.first(27)));
  Frame bad_op = f;
  bad_op[kEthernetHeaderSize + 7] = 9;
  EXPECT_FALSE(parse_arp(parse_ethernet(bad_op)->payload));
}

TEST(NetIpv4, ParsesValidPacketAndStripsEthernetPadding) {
  const std::uint8_t payload[] = {'h', 'i'};
  Frame f = guest_udp(layout().gateway, 1000, 53, payload);
  f.insert(f.end(), 16, 0);  // padding to the ethernet minimum
  auto ip = parse_ipv4(ip_payload(f));
  ASSERT_TRUE(ip) << ip.error();
  EXPECT_EQ(ip->src, layout().guest);
  EXPECT_EQ(ip->dst, layout().gateway);
  EXPECT_EQ(ip->protocol, kIpProtoUdp);
  EXPECT_EQ(ip->payload.size(), 8u + 2u);
}

TEST(NetIpv4, RejectsMalformedHeaders) {
  const std::uint8_t payload[] = {'h', 'i'};
  const Frame good = guest_udp(layout().gateway, 1000, 53, payload);
  auto mutate = [&](std::size_t offset, std::uint8_t value, bool fix_checksum) {
    Frame f = good;
    f[kEthernetHeaderSize + offset] = value;
    if (fix_checksum) {
      f[kEthernetHeaderSize + 10] = 0;
      f[kEthernetHeaderSize + 11] = 0;
      std::uint16_t c = internet_checksum(Bytes(f).subspan(kEthernetHeaderSize, 20));
      f[kEthernetHeaderSize + 10] = static_cast<std::uint8_t>(c >> 8);
      f[kEthernetHeaderSize + 11] = static_cast<std::uint8_t>(c);
    }
    return parse_ipv4(ip_payload(f));
  };
  EXPECT_STREQ(mutate(0, 0x65, true).error(), "not IPv4");
  EXPECT_STREQ(mutate(0, 0x44, true).error(), "bad IPv4 header length");
  EXPECT_STREQ(mutate(0, 0x46, true).error(), "IPv4 options");
  EXPECT_STREQ(mutate(3, 0xff, true).error(), "bad IPv4 total length");  // longer than the frame
  EXPECT_STREQ(mutate(6, 0x20, true).error(), "IPv4 fragment");          // more fragments
  EXPECT_STREQ(mutate(7, 0x01, true).error(), "IPv4 fragment");          // offset 8
  EXPECT_STREQ(mutate(8, 1, false).error(), "bad IPv4 header checksum");
  EXPECT_FALSE(parse_ipv4(ip_payload(good).first(19)));
}

TEST(NetUdp, ChecksLengthAndChecksum) {
  const std::uint8_t payload[] = {1, 2, 3, 4, 5};
  Frame f = guest_udp(layout().gateway, 4000, 53, payload);
  auto ip = parse_ipv4(ip_payload(f));
  ASSERT_TRUE(ip);
  auto udp = parse_udp(ip.value());
  ASSERT_TRUE(udp) << udp.error();
  EXPECT_EQ(udp->src_port, 4000);
  EXPECT_EQ(udp->dst_port, 53);
  EXPECT_EQ(udp->payload.size(), 5u);

  Frame bad_sum = f;
  bad_sum.back() ^= 0xff;
  EXPECT_STREQ(parse_udp(parse_ipv4(ip_payload(bad_sum)).value()).error(), "bad UDP checksum");

  Frame bad_len = f;
  const std::size_t udp_off = kEthernetHeaderSize + kIpv4HeaderSize;
  bad_len[udp_off + 4] = 0x10;  // 4096 > packet
  EXPECT_STREQ(parse_udp(parse_ipv4(ip_payload(bad_len)).value()).error(), "bad UDP length");
  bad_len[udp_off + 4] = 0;
  bad_len[udp_off + 5] = 7;  // < header
  EXPECT_STREQ(parse_udp(parse_ipv4(ip_payload(bad_len)).value()).error(), "bad UDP length");

  Frame no_sum = f;  // checksum 0 means "none" for UDP over IPv4
  no_sum[udp_off + 6] = 0;
  no_sum[udp_off + 7] = 0;
  EXPECT_TRUE(parse_udp(parse_ipv4(ip_payload(no_sum)).value()));
}

TEST(NetIcmp, EchoRequestBecomesMatchingReply) {
  Frame req;
  ByteWriter w(req);
  write_ethernet_header(w, layout().gateway_mac, layout().guest_mac, kEtherTypeIpv4);
  write_ipv4_header(w, layout().guest, layout().gateway, kIpProtoIcmp, 8 + 4);
  const std::size_t off = w.size();
  w.u8(8);
  w.u8(0);
  w.u16(0);
  w.u16(0x1234);
  w.u16(7);
  w.u32(0xdeadbeef);
  w.put_u16_at(off + 2, internet_checksum(Bytes(req).subspan(off)));
  w.put_u16_at(kEthernetHeaderSize + 10, internet_checksum(Bytes(req).subspan(kEthernetHeaderSize, 20)));

  auto ip = parse_ipv4(ip_payload(req));
  ASSERT_TRUE(ip);
  auto echo = parse_icmp_echo_request(ip.value());
  ASSERT_TRUE(echo) << echo.error();
  EXPECT_EQ(echo->id, 0x1234);
  EXPECT_EQ(echo->sequence, 7);

  Frame reply = build_icmp_echo_reply_frame(
      {layout().guest_mac, layout().gateway_mac, layout().gateway, layout().guest}, echo.value());
  auto rip = parse_ipv4(ip_payload(reply));
  ASSERT_TRUE(rip);
  EXPECT_EQ(rip->payload[0], 0);  // echo reply
  EXPECT_EQ(internet_checksum(rip->payload), 0);
  EXPECT_EQ(load_u32(&rip->payload[8]), 0xdeadbeefu);

  Frame corrupt = req;
  corrupt.back() ^= 1;
  EXPECT_STREQ(parse_icmp_echo_request(parse_ipv4(ip_payload(corrupt)).value()).error(), "bad ICMP checksum");
}

TEST(NetTcp, ParsesHeaderChecksumAndPayloadLength) {
  Frame f = guest_tcp(Ipv4{93, 184, 216, 34}, 40000, 80, 1000, 0, kTcpSyn, "abc");
  auto ip = parse_ipv4(ip_payload(f));
  ASSERT_TRUE(ip);
  auto seg = parse_tcp(ip.value(), true);
  ASSERT_TRUE(seg) << seg.error();
  EXPECT_EQ(seg->src_port, 40000);
  EXPECT_EQ(seg->dst_port, 80);
  EXPECT_EQ(seg->seq, 1000u);
  EXPECT_TRUE(seg->has(kTcpSyn));
  EXPECT_EQ(seg->payload_length, 3u);

  Frame corrupt = f;
  corrupt.back() ^= 1;
  EXPECT_STREQ(parse_tcp(parse_ipv4(ip_payload(corrupt)).value(), true).error(), "bad TCP checksum");
  EXPECT_TRUE(parse_tcp(parse_ipv4(ip_payload(corrupt)).value(), false));

  Frame bad_offset = f;
  bad_offset[kEthernetHeaderSize + 20 + 12] = 0xf0;  // 60-byte header in a 23-byte segment
  EXPECT_STREQ(parse_tcp(parse_ipv4(ip_payload(bad_offset)).value(), false).error(), "bad TCP data offset");
}

TEST(NetTcp, BuiltResetHasValidChecksums) {
  TcpEndpoints e{layout().gateway_mac, layout().guest_mac, Ipv4{1, 2, 3, 4}, layout().guest, 443, 40000};
  Frame rst = build_tcp_frame(e, 5, 6, kTcpRst | kTcpAck);
  auto ip = parse_ipv4(ip_payload(rst));
  ASSERT_TRUE(ip);
  auto seg = parse_tcp(ip.value(), true);
  ASSERT_TRUE(seg);
  EXPECT_EQ(seg->src_port, 443);
  EXPECT_EQ(seg->ack, 6u);
  EXPECT_TRUE(seg->has(kTcpRst));
}
