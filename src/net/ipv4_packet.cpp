#include "net/ipv4_packet.h"

#include "net/checksum.h"
#include "net/ethernet.h"

namespace gondolin::net {

Parsed<Ipv4Packet> parse_ipv4(Bytes data) {
  using P = Parsed<Ipv4Packet>;
  if (data.size() < kIpv4HeaderSize) return P::fail("short IPv4 header");
  const std::uint8_t vihl = data[0];
  if ((vihl >> 4) != 4) return P::fail("not IPv4");
  const std::size_t header_len = std::size_t{vihl & 0x0fu} * 4;
  if (header_len < kIpv4HeaderSize) return P::fail("bad IPv4 header length");
  if (header_len != kIpv4HeaderSize) return P::fail("IPv4 options");
  const std::uint16_t total = load_u16(&data[2]);
  if (total < header_len || total > data.size()) return P::fail("bad IPv4 total length");
  const std::uint16_t frag = load_u16(&data[6]);
  if ((frag & 0x2000) != 0 || (frag & 0x1fff) != 0) return P::fail("IPv4 fragment");
  if ((frag & 0x8000) != 0) return P::fail("IPv4 reserved flag");
  if (internet_checksum(data.first(header_len)) != 0) return P::fail("bad IPv4 header checksum");
  Ipv4Packet p;
  p.ttl = data[8];
  p.protocol = data[9];
  p.id = load_u16(&data[4]);
  std::copy(data.begin() + 12, data.begin() + 16, p.src.begin());
  std::copy(data.begin() + 16, data.begin() + 20, p.dst.begin());
  p.header = data.first(header_len);
  p.payload = data.subspan(header_len, total - header_len);
  return p;
}

Parsed<UdpDatagram> parse_udp(const Ipv4Packet& ip) {
  using P = Parsed<UdpDatagram>;
  if (ip.protocol != kIpProtoUdp) return P::fail("not UDP");
  ByteReader r(ip.payload);
  UdpDatagram d;
  std::uint16_t length = 0, checksum = 0;
  if (!r.u16(d.src_port) || !r.u16(d.dst_port) || !r.u16(length) || !r.u16(checksum))
    return P::fail("short UDP header");
  if (length < kUdpHeaderSize || length > ip.payload.size()) return P::fail("bad UDP length");
  if (checksum != 0) {
    std::uint32_t s = pseudo_header_sum(ip.src, ip.dst, kIpProtoUdp, length);
    if (checksum_finish(checksum_add(s, ip.payload.first(length))) != 0) return P::fail("bad UDP checksum");
  }
  d.payload = ip.payload.subspan(kUdpHeaderSize, length - kUdpHeaderSize);
  return d;
}

Parsed<IcmpEcho> parse_icmp_echo_request(const Ipv4Packet& ip) {
  using P = Parsed<IcmpEcho>;
  if (ip.protocol != kIpProtoIcmp) return P::fail("not ICMP");
  if (ip.payload.size() < 8) return P::fail("short ICMP message");
  if (internet_checksum(ip.payload) != 0) return P::fail("bad ICMP checksum");
  if (ip.payload[0] != 8 || ip.payload[1] != 0) return P::fail("not an ICMP echo request");
  IcmpEcho e;
  e.id = load_u16(&ip.payload[4]);
  e.sequence = load_u16(&ip.payload[6]);
  e.data = ip.payload.subspan(8);
  return e;
}

void write_ipv4_header(ByteWriter& w, const Ipv4& src, const Ipv4& dst, std::uint8_t protocol,
                       std::uint16_t payload_length, std::uint16_t id) {
  w.u8(0x45);
  w.u8(0);
  w.u16(static_cast<std::uint16_t>(kIpv4HeaderSize + payload_length));
  w.u16(id);
  w.u16(0x4000);  // don't fragment
  w.u8(64);
  w.u8(protocol);
  w.u16(0);
  w.bytes(src);
  w.bytes(dst);
}

namespace {

// The header checksum is computed over bytes already in `frame`.
void fill_ipv4_checksum(std::vector<std::uint8_t>& frame, std::size_t ip_offset) {
  ByteWriter w(frame);
  w.put_u16_at(ip_offset + 10, internet_checksum(Bytes(frame).subspan(ip_offset, kIpv4HeaderSize)));
}

}  // namespace

std::vector<std::uint8_t> build_udp_frame(const FrameAddresses& a, std::uint16_t src_port, std::uint16_t dst_port,
                                          Bytes payload) {
  std::vector<std::uint8_t> f;
  const auto udp_len = static_cast<std::uint16_t>(kUdpHeaderSize + payload.size());
  f.reserve(kEthernetHeaderSize + kIpv4HeaderSize + udp_len);
  ByteWriter w(f);
  write_ethernet_header(w, a.dst_mac, a.src_mac, kEtherTypeIpv4);
  write_ipv4_header(w, a.src_ip, a.dst_ip, kIpProtoUdp, udp_len);
  const std::size_t udp_off = w.size();
  w.u16(src_port);
  w.u16(dst_port);
  w.u16(udp_len);
  w.u16(0);
  w.bytes(payload);
  std::uint32_t s = pseudo_header_sum(a.src_ip, a.dst_ip, kIpProtoUdp, udp_len);
  std::uint16_t c = checksum_finish(checksum_add(s, Bytes(f).subspan(udp_off)));
  w.put_u16_at(udp_off + 6, c == 0 ? 0xffff : c);  // 0 would mean "no checksum"
  fill_ipv4_checksum(f, kEthernetHeaderSize);
  return f;
}

std::vector<std::uint8_t> build_icmp_echo_reply_frame(const FrameAddresses& a, const IcmpEcho& request) {
  std::vector<std::uint8_t> f;
  const auto icmp_len = static_cast<std::uint16_t>(8 + request.data.size());
  ByteWriter w(f);
  write_ethernet_header(w, a.dst_mac, a.src_mac, kEtherTypeIpv4);
  write_ipv4_header(w, a.src_ip, a.dst_ip, kIpProtoIcmp, icmp_len);
  const std::size_t icmp_off = w.size();
  w.u8(0);  // echo reply
  w.u8(0);
  w.u16(0);
  w.u16(request.id);
  w.u16(request.sequence);
  w.bytes(request.data);
  w.put_u16_at(icmp_off + 2, internet_checksum(Bytes(f).subspan(icmp_off)));
  fill_ipv4_checksum(f, kEthernetHeaderSize);
  return f;
}

}  // namespace gondolin::net
