// ARP for IPv4 over Ethernet: the stack answers for the gateway and every
// other address on the guest's virtual subnet.
#pragma once

#include <cstdint>
#include <vector>

#include "net/bytes.h"
#include "net/ip_address.h"

namespace gondolin::net {

constexpr std::uint16_t kArpRequest = 1;
constexpr std::uint16_t kArpReply = 2;

struct ArpPacket {
  std::uint16_t operation = 0;
  Mac sender_mac{};
  Ipv4 sender_ip{};
  Mac target_mac{};
  Ipv4 target_ip{};
};

// Only Ethernet/IPv4 ARP (htype 1, ptype 0x0800, 6/4 address lengths).
Parsed<ArpPacket> parse_arp(Bytes payload);
// An ethernet frame carrying `p`, addressed to `eth_dst`.
std::vector<std::uint8_t> build_arp_frame(const Mac& eth_dst, const ArpPacket& p);

}  // namespace gondolin::net
