// The Internet checksum (RFC 1071) for IPv4 headers, ICMP, UDP and TCP.
#pragma once

#include <cstdint>

#include "net/bytes.h"
#include "net/ip_address.h"

namespace gondolin::net {

// Adds `data` to a running one's-complement sum, folded to 16 bits plus carry
// (so small additions cannot overflow). `data` must start at an even offset
// of the checksummed range.
std::uint32_t checksum_add(std::uint32_t sum, Bytes data);
std::uint16_t checksum_finish(std::uint32_t sum);
inline std::uint16_t internet_checksum(Bytes data) { return checksum_finish(checksum_add(0, data)); }
// The IPv4 pseudo-header of UDP and TCP checksums.
std::uint32_t pseudo_header_sum(const Ipv4& src, const Ipv4& dst, std::uint8_t protocol, std::uint16_t length);

}  // namespace gondolin::net
