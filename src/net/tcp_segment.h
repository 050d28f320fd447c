// Just enough TCP for the stack to follow each flow (libslirp runs the real
// state machine): header fields, and the resets the stack sends itself.
#pragma once

#include <cstdint>
#include <vector>

#include "net/bytes.h"
#include "net/ip_address.h"
#include "net/ipv4_packet.h"

namespace gondolin::net {

constexpr std::uint8_t kTcpFin = 0x01;
constexpr std::uint8_t kTcpSyn = 0x02;
constexpr std::uint8_t kTcpRst = 0x04;
constexpr std::uint8_t kTcpPsh = 0x08;
constexpr std::uint8_t kTcpAck = 0x10;

struct TcpSegment {
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  std::uint32_t seq = 0;
  std::uint32_t ack = 0;
  std::uint8_t flags = 0;
  std::size_t payload_length = 0;
  bool has(std::uint8_t f) const { return (flags & f) != 0; }
};

// Header sanity (data offset, ports) and, with `verify_checksum`, the checksum.
Parsed<TcpSegment> parse_tcp(const Ipv4Packet& ip, bool verify_checksum);

struct TcpEndpoints {
  Mac src_mac{};
  Mac dst_mac{};
  Ipv4 src_ip{};
  Ipv4 dst_ip{};
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
};
// A bare segment (no payload, no options) with the given flags.
std::vector<std::uint8_t> build_tcp_frame(const TcpEndpoints& e, std::uint32_t seq, std::uint32_t ack,
                                          std::uint8_t flags, std::uint16_t window = 0);

}  // namespace gondolin::net
