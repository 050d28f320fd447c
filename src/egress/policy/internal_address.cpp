#include "egress/policy/internal_address.h"

#include <array>
#include <cstdint>

namespace gondolin::egress {
namespace {

struct V4Range {
  std::uint32_t base;
  int prefix;
  const char* kind;
};

constexpr std::uint32_t v4(std::uint32_t a, std::uint32_t b, std::uint32_t c, std::uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

constexpr std::array<V4Range, 16> kV4Ranges{{
    {v4(0, 0, 0, 0), 8, "this-network (0.0.0.0/8)"},
    {v4(10, 0, 0, 0), 8, "private (10.0.0.0/8)"},
    {v4(100, 64, 0, 0), 10, "shared CGNAT (100.64.0.0/10)"},
    {v4(127, 0, 0, 0), 8, "loopback"},
    {v4(169, 254, 0, 0), 16, "link-local"},
    {v4(172, 16, 0, 0), 12, "private (172.16.0.0/12)"},
    {v4(192, 0, 0, 0), 24, "IETF protocol assignments (192.0.0.0/24)"},
    {v4(192, 0, 2, 0), 24, "documentation"},
    {v4(192, 88, 99, 0), 24, "6to4 relay anycast"},
    {v4(192, 168, 0, 0), 16, "private (192.168.0.0/16)"},
    {v4(198, 18, 0, 0), 15, "benchmarking (198.18.0.0/15)"},
    {v4(198, 51, 100, 0), 24, "documentation"},
    {v4(203, 0, 113, 0), 24, "documentation"},
    {v4(224, 0, 0, 0), 4, "multicast"},
    {v4(255, 255, 255, 255), 32, "broadcast"},
    {v4(240, 0, 0, 0), 4, "reserved (240.0.0.0/4)"},
}};

std::optional<std::string> v4_kind(std::uint32_t a) {
  for (const auto& r : kV4Ranges) {
    std::uint32_t mask = r.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - r.prefix);
    if ((a & mask) == (r.base & mask)) return std::string(r.kind);
  }
  return std::nullopt;
}

std::uint32_t v4_at(const boost::asio::ip::address_v6::bytes_type& b, std::size_t offset) {
  return (std::uint32_t{b[offset]} << 24) | (std::uint32_t{b[offset + 1]} << 16) | (std::uint32_t{b[offset + 2]} << 8) |
         std::uint32_t{b[offset + 3]};
}

bool all_zero(const boost::asio::ip::address_v6::bytes_type& b, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i)
    if (b[i] != 0) return false;
  return true;
}

std::optional<std::string> v6_kind(const boost::asio::ip::address_v6& a) {
  const auto b = a.to_bytes();
  if (a.is_unspecified()) return "unspecified";
  if (a.is_loopback()) return "loopback";
  if (a.is_v4_mapped()) {
    if (auto k = v4_kind(v4_at(b, 12))) return "IPv4-mapped " + *k;
    return std::nullopt;
  }
  if (all_zero(b, 0, 12)) return "IPv4-compatible";  // deprecated ::a.b.c.d
  if (b[0] == 0xff) return "multicast";
  if ((b[0] & 0xfe) == 0xfc) return "unique local (fc00::/7)";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "link-local";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return "site-local";
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return "documentation";
  if (b[0] == 0x01 && all_zero(b, 1, 8)) return "discard (100::/64)";
  // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address inside.
  if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && all_zero(b, 4, 12))
    if (auto k = v4_kind(v4_at(b, 12))) return "NAT64 " + *k;
  if (b[0] == 0x20 && b[1] == 0x02)
    if (auto k = v4_kind(v4_at(b, 2))) return "6to4 " + *k;
  return std::nullopt;
}

}  // namespace

std::optional<std::string> internal_address_kind(const boost::asio::ip::address& address) {
  if (address.is_v4()) return v4_kind(address.to_v4().to_uint());
  return v6_kind(address.to_v6());
}

}  // namespace gondolin::egress
