#include "net/ip_address.h"

#include <cstdio>

namespace gondolin::net {

std::string to_string(const Ipv4& a) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
  return buf;
}

std::string to_string(const Mac& m) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return buf;
}

bool parse_mac(const std::string& text, Mac& out) {
  if (text.size() != 17) return false;
  Mac r{};
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (i > 0 && text[3 * i - 1] != ':') return false;
    std::uint8_t octet = 0;
    for (char c : text.substr(3 * i, 2)) {
      const bool digit = c >= '0' && c <= '9', letter = c >= 'a' && c <= 'f';
      if (!digit && !letter) return false;
      octet = static_cast<std::uint8_t>(octet * 16 + (digit ? c - '0' : c - 'a' + 10));
    }
    r[i] = octet;
  }
  out = r;
  return true;
}

bool parse_ipv4(const std::string& text, Ipv4& out) {
  Ipv4 r{};
  std::size_t i = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= text.size() || text[i] != '.') return false;
      ++i;
    }
    unsigned value = 0;
    std::size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 4) {
      value = value * 10 + static_cast<unsigned>(text[i] - '0');
      ++i;
      ++digits;
    }
    // No empty parts, no leading zeros (they mean octal to some parsers).
    if (digits == 0 || digits > 3 || value > 255 || (digits > 1 && text[i - digits] == '0')) return false;
    r[static_cast<std::size_t>(part)] = static_cast<std::uint8_t>(value);
  }
  if (i != text.size()) return false;
  out = r;
  return true;
}

bool is_unicast(const Ipv4& a) {
  if (a[0] == 0) return false;    // "this network"
  if (a[0] >= 224) return false;  // multicast, reserved, broadcast
  return true;
}

}  // namespace gondolin::net
