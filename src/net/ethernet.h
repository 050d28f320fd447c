// Ethernet II frames as QEMU's virtio-net delivers them (no FCS, no VLAN tags).
#pragma once

#include <cstdint>
#include <vector>

#include "net/bytes.h"
#include "net/ip_address.h"

namespace gondolin::net {

constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
constexpr std::uint16_t kEtherTypeArp = 0x0806;
constexpr std::uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr std::size_t kEthernetHeaderSize = 14;

struct EthernetFrame {
  Mac dst{};
  Mac src{};
  std::uint16_t ether_type = 0;
  Bytes payload;
};

Parsed<EthernetFrame> parse_ethernet(Bytes frame);
void write_ethernet_header(ByteWriter& w, const Mac& dst, const Mac& src, std::uint16_t ether_type);

}  // namespace gondolin::net
