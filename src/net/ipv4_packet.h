// IPv4 with the two transports the stack answers itself: UDP (DHCP, DNS) and
// ICMP echo. Parsers are strict: no fragments, no IP options, valid checksums.
#pragma once

#include <cstdint>
#include <vector>

#include "net/bytes.h"
#include "net/ip_address.h"

namespace gondolin::net {

constexpr std::uint8_t kIpProtoIcmp = 1;
constexpr std::uint8_t kIpProtoTcp = 6;
constexpr std::uint8_t kIpProtoUdp = 17;
constexpr std::size_t kIpv4HeaderSize = 20;
constexpr std::size_t kUdpHeaderSize = 8;

struct Ipv4Packet {
  Ipv4 src{};
  Ipv4 dst{};
  std::uint8_t protocol = 0;
  std::uint8_t ttl = 0;
  std::uint16_t id = 0;
  Bytes header;   // the 20-byte header
  Bytes payload;  // exactly total_length - 20 bytes (ethernet padding removed)
};

// Rejects fragments (and the DF-less "more fragments" start), options,
// inconsistent lengths and bad header checksums.
Parsed<Ipv4Packet> parse_ipv4(Bytes data);

struct UdpDatagram {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  Bytes payload;
};

// Checks the length field against the packet and the checksum when present.
Parsed<UdpDatagram> parse_udp(const Ipv4Packet& ip);

struct IcmpEcho {
  std::uint16_t id = 0;
  std::uint16_t sequence = 0;
  Bytes data;
};

// An ICMP echo request (type 8, code 0) with a valid checksum.
Parsed<IcmpEcho> parse_icmp_echo_request(const Ipv4Packet& ip);

// Complete ethernet frames, checksums filled in.
struct FrameAddresses {
  Mac dst_mac{};
  Mac src_mac{};
  Ipv4 src_ip{};
  Ipv4 dst_ip{};
};
std::vector<std::uint8_t> build_udp_frame(const FrameAddresses& a, std::uint16_t src_port, std::uint16_t dst_port,
                                          Bytes payload);
std::vector<std::uint8_t> build_icmp_echo_reply_frame(const FrameAddresses& a, const IcmpEcho& request);

// Writes a 20-byte IPv4 header (DF set, TTL 64) with its checksum.
void write_ipv4_header(ByteWriter& w, const Ipv4& src, const Ipv4& dst, std::uint8_t protocol,
                       std::uint16_t payload_length, std::uint16_t id = 0);

}  // namespace gondolin::net
