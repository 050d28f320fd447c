#include "net/arp.h"

#include "net/ethernet.h"

namespace gondolin::net {

Parsed<ArpPacket> parse_arp(Bytes payload) {
  using P = Parsed<ArpPacket>;
  ByteReader r(payload);
  std::uint16_t htype = 0, ptype = 0;
  std::uint8_t hlen = 0, plen = 0;
  ArpPacket p;
  if (!r.u16(htype) || !r.u16(ptype) || !r.u8(hlen) || !r.u8(plen) || !r.u16(p.operation))
    return P::fail("short ARP packet");
  if (htype != 1 || ptype != kEtherTypeIpv4 || hlen != 6 || plen != 4) return P::fail("not Ethernet/IPv4 ARP");
  if (!r.array(p.sender_mac) || !r.array(p.sender_ip) || !r.array(p.target_mac) || !r.array(p.target_ip))
    return P::fail("short ARP packet");
  if (p.operation != kArpRequest && p.operation != kArpReply) return P::fail("unknown ARP operation");
  return p;
}

std::vector<std::uint8_t> build_arp_frame(const Mac& eth_dst, const ArpPacket& p) {
  std::vector<std::uint8_t> f;
  f.reserve(kEthernetHeaderSize + 28);
  ByteWriter w(f);
  write_ethernet_header(w, eth_dst, p.sender_mac, kEtherTypeArp);
  w.u16(1);
  w.u16(kEtherTypeIpv4);
  w.u8(6);
  w.u8(4);
  w.u16(p.operation);
  w.bytes(p.sender_mac);
  w.bytes(p.sender_ip);
  w.bytes(p.target_mac);
  w.bytes(p.target_ip);
  return f;
}

}  // namespace gondolin::net
