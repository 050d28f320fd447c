// Frames as the guest would send them, for the stack's unit tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net/arp.h"
#include "net/bytes.h"
#include "net/checksum.h"
#include "net/ethernet.h"
#include "net/ip_address.h"
#include "net/ipv4_packet.h"
#include "net/tcp_segment.h"

namespace gondolin::net::test {

using Frame = std::vector<std::uint8_t>;

inline const NetLayout& layout() {
  static const NetLayout l;
  return l;
}

// A UDP frame from the guest (its MAC and address unless told otherwise).
inline Frame guest_udp(const Ipv4& dst, std::uint16_t sport, std::uint16_t dport, Bytes payload,
                       const Ipv4& src = layout().guest) {
  FrameAddresses a{layout().gateway_mac, layout().guest_mac, src, dst};
  return build_udp_frame(a, sport, dport, payload);
}

inline Frame guest_tcp(const Ipv4& dst, std::uint16_t sport, std::uint16_t dport, std::uint32_t seq, std::uint32_t ack,
                       std::uint8_t flags, const std::string& payload = {}, std::uint16_t window = 65535) {
  Frame f;
  ByteWriter w(f);
  write_ethernet_header(w, layout().gateway_mac, layout().guest_mac, kEtherTypeIpv4);
  const std::size_t ip_off = w.size();
  const auto tcp_len = static_cast<std::uint16_t>(20 + payload.size());
  write_ipv4_header(w, layout().guest, dst, kIpProtoTcp, tcp_len);
  const std::size_t tcp_off = w.size();
  w.u16(sport);
  w.u16(dport);
  w.u32(seq);
  w.u32(ack);
  w.u8(5 << 4);
  w.u8(flags);
  w.u16(window);
  w.u16(0);
  w.u16(0);
  w.bytes(Bytes(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()));
  std::uint32_t sum = pseudo_header_sum(layout().guest, dst, kIpProtoTcp, tcp_len);
  w.put_u16_at(tcp_off + 16, checksum_finish(checksum_add(sum, Bytes(f).subspan(tcp_off))));
  w.put_u16_at(ip_off + 10, internet_checksum(Bytes(f).subspan(ip_off, kIpv4HeaderSize)));
  return f;
}

// A DNS query for `name` (labels taken as given, so tests can make bad ones).
inline Frame dns_query_bytes(std::uint16_t id, const std::vector<std::string>& labels, std::uint16_t type,
                             std::uint16_t klass = 1) {
  Frame q;
  ByteWriter w(q);
  w.u16(id);
  w.u16(0x0100);
  w.u16(1);
  w.u16(0);
  w.u16(0);
  w.u16(0);
  for (const auto& l : labels) {
    w.u8(static_cast<std::uint8_t>(l.size()));
    w.bytes(Bytes(reinterpret_cast<const std::uint8_t*>(l.data()), l.size()));
  }
  w.u8(0);
  w.u16(type);
  w.u16(klass);
  return q;
}

// A DHCP client message (BOOTREQUEST) of `type` from `mac`.
inline Frame dhcp_request_bytes(std::uint8_t type, const Mac& mac, std::uint32_t xid = 0x1234,
                                const Ipv4* requested = nullptr) {
  Frame p;
  ByteWriter w(p);
  w.u8(1);
  w.u8(1);
  w.u8(6);
  w.u8(0);
  w.u32(xid);
  w.u16(0);
  w.u16(0x8000);
  w.zeros(16);
  w.bytes(mac);
  w.zeros(10 + 64 + 128);
  w.u32(0x63825363);
  w.u8(53);
  w.u8(1);
  w.u8(type);
  if (requested) {
    w.u8(50);
    w.u8(4);
    w.bytes(*requested);
  }
  w.u8(255);
  return p;
}

}  // namespace gondolin::net::test
