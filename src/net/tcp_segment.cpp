#include "net/tcp_segment.h"

#include "net/checksum.h"
#include "net/ethernet.h"

namespace gondolin::net {

Parsed<TcpSegment> parse_tcp(const Ipv4Packet& ip, bool verify_checksum) {
  using P = Parsed<TcpSegment>;
  if (ip.protocol != kIpProtoTcp) return P::fail("not TCP");
  if (ip.payload.size() < 20) return P::fail("short TCP header");
  const std::uint8_t* h = ip.payload.data();
  TcpSegment s;
  s.src_port = load_u16(h);
  s.dst_port = load_u16(h + 2);
  s.seq = load_u32(h + 4);
  s.ack = load_u32(h + 8);
  const std::size_t data_offset = std::size_t{static_cast<std::uint8_t>(h[12] >> 4)} * 4;
  if (data_offset < 20 || data_offset > ip.payload.size()) return P::fail("bad TCP data offset");
  s.flags = h[13];
  if (s.src_port == 0 || s.dst_port == 0) return P::fail("TCP port 0");
  if (verify_checksum) {
    std::uint32_t sum = pseudo_header_sum(ip.src, ip.dst, kIpProtoTcp, static_cast<std::uint16_t>(ip.payload.size()));
    if (checksum_finish(checksum_add(sum, ip.payload)) != 0) return P::fail("bad TCP checksum");
  }
  s.payload_length = ip.payload.size() - data_offset;
  return s;
}

std::vector<std::uint8_t> build_tcp_frame(const TcpEndpoints& e, std::uint32_t seq, std::uint32_t ack,
                                          std::uint8_t flags, std::uint16_t window) {
  std::vector<std::uint8_t> f;
  ByteWriter w(f);
  write_ethernet_header(w, e.dst_mac, e.src_mac, kEtherTypeIpv4);
  const std::size_t ip_off = w.size();
  write_ipv4_header(w, e.src_ip, e.dst_ip, kIpProtoTcp, 20);
  const std::size_t tcp_off = w.size();
  w.u16(e.src_port);
  w.u16(e.dst_port);
  w.u32(seq);
  w.u32(ack);
  w.u8(5 << 4);
  w.u8(flags);
  w.u16(window);
  w.u16(0);  // checksum
  w.u16(0);  // urgent pointer
  std::uint32_t sum = pseudo_header_sum(e.src_ip, e.dst_ip, kIpProtoTcp, 20);
  w.put_u16_at(tcp_off + 16, checksum_finish(checksum_add(sum, Bytes(f).subspan(tcp_off))));
  w.put_u16_at(ip_off + 10, internet_checksum(Bytes(f).subspan(ip_off, kIpv4HeaderSize)));
  return f;
}

}  // namespace gondolin::net
