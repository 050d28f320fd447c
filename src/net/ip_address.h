// Link and network addresses as plain values, and the layout of the guest's
// virtual network.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace gondolin::net {

using Ipv4 = std::array<std::uint8_t, 4>;
using Mac = std::array<std::uint8_t, 6>;

constexpr Ipv4 kIpv4Any{0, 0, 0, 0};
constexpr Ipv4 kIpv4Broadcast{255, 255, 255, 255};
constexpr Ipv4 kIpv4Loopback{127, 0, 0, 1};
constexpr Mac kMacBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

constexpr std::uint32_t to_u32(const Ipv4& a) {
  return (std::uint32_t{a[0]} << 24) | (std::uint32_t{a[1]} << 16) | (std::uint32_t{a[2]} << 8) | a[3];
}
constexpr Ipv4 from_u32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
          static_cast<std::uint8_t>(v)};
}

std::string to_string(const Ipv4& a);
std::string to_string(const Mac& m);
// Dotted quad only ("10.0.2.2"); no shorthand forms.
bool parse_ipv4(const std::string& text, Ipv4& out);
// Exactly to_string's form: six pairs of lower-case hex digits, colon-separated.
bool parse_mac(const std::string& text, Mac& out);

// Multicast, broadcast, 0.0.0.0/8 or the limited broadcast: never a TCP peer.
bool is_unicast(const Ipv4& a);

// The guest's virtual network. Fixed, so a resumed guest finds the same
// gateway and address it was given before its snapshot.
struct NetLayout {
  Ipv4 network{10, 0, 2, 0};
  Ipv4 netmask{255, 255, 255, 0};
  Ipv4 gateway{10, 0, 2, 2};  // router, DNS server and ICMP echo target
  Ipv4 guest{10, 0, 2, 15};
  Mac guest_mac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
  // libslirp derives its frames' source MAC from its host address; ours
  // (ARP, DHCP, DNS, ICMP) use the same one so the guest sees one router.
  Mac gateway_mac{0x52, 0x55, 10, 0, 2, 2};
  // Slirp has no TCP window scaling, so larger frames are the cheap way to
  // move more per window; 16 KiB is within what it handles.
  std::uint16_t mtu = 16384;
  // Synthetic DNS answers come from this range (RFC 2544 benchmarking space,
  // never routed): the single-address mode uses its first host.
  Ipv4 synthetic_base{198, 18, 0, 0};
  std::uint32_t synthetic_prefix = 15;

  bool in_subnet(const Ipv4& a) const { return (to_u32(a) & to_u32(netmask)) == to_u32(network); }
  Ipv4 subnet_broadcast() const { return from_u32(to_u32(network) | ~to_u32(netmask)); }
};

}  // namespace gondolin::net
