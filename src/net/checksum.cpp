#include "net/checksum.h"

namespace gondolin::net {

std::uint32_t checksum_add(std::uint32_t sum, Bytes data) {
  std::uint64_t s = sum;
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) s += load_u16(data.data() + i);
  if (i < data.size()) s += static_cast<std::uint32_t>(data[i]) << 8;
  while (s >> 16) s = (s & 0xffffu) + (s >> 16);
  return static_cast<std::uint32_t>(s);
}

std::uint16_t checksum_finish(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffffu) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffffu);
}

std::uint32_t pseudo_header_sum(const Ipv4& src, const Ipv4& dst, std::uint8_t protocol, std::uint16_t length) {
  std::uint32_t s = checksum_add(0, src);
  s = checksum_add(s, dst);
  return s + protocol + length;
}

}  // namespace gondolin::net
