#include "net/dhcp_server.h"

namespace gondolin::net {
namespace {

constexpr std::size_t kBootpFixedSize = 236;
constexpr std::uint32_t kMagicCookie = 0x63825363;
constexpr std::size_t kMinReplySize = 300;  // the BOOTP minimum some clients still expect

enum Option : std::uint8_t {
  kPad = 0,
  kSubnetMask = 1,
  kRouter = 3,
  kDnsServer = 6,
  kInterfaceMtu = 26,
  kRequestedIp = 50,
  kLeaseTime = 51,
  kMessageType = 53,
  kServerId = 54,
  kEnd = 255,
};

}  // namespace

Parsed<DhcpMessage> parse_dhcp_request(Bytes data) {
  using P = Parsed<DhcpMessage>;
  ByteReader r(data);
  std::uint8_t op = 0, htype = 0, hlen = 0, hops = 0;
  DhcpMessage m;
  std::uint16_t secs = 0;
  Ipv4 yiaddr{}, siaddr{}, giaddr{};
  if (!r.u8(op) || !r.u8(htype) || !r.u8(hlen) || !r.u8(hops) || !r.u32(m.xid) || !r.u16(secs) || !r.u16(m.flags) ||
      !r.array(m.ciaddr) || !r.array(yiaddr) || !r.array(siaddr) || !r.array(giaddr) || !r.array(m.chaddr))
    return P::fail("short DHCP message");
  if (op != 1) return P::fail("not a BOOTREQUEST");
  if (htype != 1 || hlen != 6) return P::fail("DHCP hardware type is not Ethernet");
  if (!r.skip(kBootpFixedSize - 34)) return P::fail("short DHCP message");  // rest of chaddr, sname, file
  std::uint32_t cookie = 0;
  if (!r.u32(cookie) || cookie != kMagicCookie) return P::fail("no DHCP magic cookie");

  bool have_type = false, ended = false;
  while (r.remaining() > 0) {
    std::uint8_t code = 0, len = 0;
    r.u8(code);
    if (code == kPad) continue;
    if (code == kEnd) {
      ended = true;
      break;
    }
    Bytes value;
    if (!r.u8(len) || !r.take(len, value)) return P::fail("DHCP option overruns the message");
    if (code == kMessageType && !have_type) {
      if (len != 1 || value[0] < 1 || value[0] > 8) return P::fail("bad DHCP message type");
      m.type = static_cast<DhcpType>(value[0]);
      have_type = true;
    } else if ((code == kRequestedIp || code == kServerId) && len != 4) {
      return P::fail("bad DHCP address option");
    } else if (code == kRequestedIp && !m.requested_ip) {
      m.requested_ip = Ipv4{value[0], value[1], value[2], value[3]};
    } else if (code == kServerId && !m.server_id) {
      m.server_id = Ipv4{value[0], value[1], value[2], value[3]};
    }
  }
  if (!ended) return P::fail("DHCP options without an end marker");
  if (!have_type) return P::fail("DHCP message without a type");
  return m;
}

std::optional<DhcpReply> answer_dhcp(const DhcpMessage& m, const DhcpLease& lease) {
  if (m.chaddr != lease.client_mac) return std::nullopt;
  DhcpReply reply;
  switch (m.type) {
    case DhcpType::Discover: reply.type = DhcpType::Offer; break;
    case DhcpType::Request: {
      if (m.server_id && *m.server_id != lease.server) return std::nullopt;  // it chose another server
      // SELECTING/INIT-REBOOT name the address in option 50; RENEWING/REBINDING in ciaddr.
      Ipv4 wanted = m.requested_ip ? *m.requested_ip : m.ciaddr;
      reply.type = wanted == lease.client ? DhcpType::Ack : DhcpType::Nak;
      break;
    }
    default: return std::nullopt;  // DECLINE, RELEASE, INFORM: nothing to hand out
  }

  std::vector<std::uint8_t>& p = reply.payload;
  p.reserve(kMinReplySize);
  ByteWriter w(p);
  w.u8(2);  // BOOTREPLY
  w.u8(1);
  w.u8(6);
  w.u8(0);
  w.u32(m.xid);
  w.u16(0);
  w.u16(m.flags);
  w.bytes(reply.type == DhcpType::Ack ? m.ciaddr : kIpv4Any);
  w.bytes(reply.type == DhcpType::Nak ? kIpv4Any : lease.client);
  w.bytes(kIpv4Any);  // siaddr: no boot server
  w.bytes(kIpv4Any);  // giaddr
  w.bytes(m.chaddr);
  w.zeros(10 + 64 + 128);  // chaddr padding, sname, file
  w.u32(kMagicCookie);
  auto option = [&](std::uint8_t code, Bytes value) {
    w.u8(code);
    w.u8(static_cast<std::uint8_t>(value.size()));
    w.bytes(value);
  };
  const std::uint8_t type = static_cast<std::uint8_t>(reply.type);
  option(kMessageType, Bytes(&type, 1));
  option(kServerId, lease.server);
  if (reply.type != DhcpType::Nak) {
    const std::uint8_t lease_time[4] = {
        static_cast<std::uint8_t>(lease.lease_seconds >> 24), static_cast<std::uint8_t>(lease.lease_seconds >> 16),
        static_cast<std::uint8_t>(lease.lease_seconds >> 8), static_cast<std::uint8_t>(lease.lease_seconds)};
    const std::uint8_t mtu[2] = {static_cast<std::uint8_t>(lease.mtu >> 8), static_cast<std::uint8_t>(lease.mtu)};
    option(kLeaseTime, lease_time);
    option(kSubnetMask, lease.netmask);
    option(kRouter, lease.router);
    option(kDnsServer, lease.dns);
    option(kInterfaceMtu, mtu);
  }
  w.u8(kEnd);
  if (p.size() < kMinReplySize) w.zeros(kMinReplySize - p.size());
  return reply;
}

}  // namespace gondolin::net
