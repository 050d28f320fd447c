// Synthetic DNS: every name resolves, on the host, to an address from a
// private range; nothing is ever forwarded, so queries cannot carry data out.
// In per-host mode each name gets its own address, remembered (bounded, least
// recently used first out) so that a later TCP flow to that address can be
// attributed to the name.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "gondolin/net_policy.h"
#include "net/dns_message.h"
#include "net/ip_address.h"

namespace gondolin::net {

class SyntheticDns {
 public:
  static constexpr std::uint32_t kTtlSeconds = 60;
  static constexpr std::size_t kDefaultMaxNames = 8192;

  SyntheticDns(SyntheticHostMapping mapping, const NetLayout& layout, std::size_t max_names = kDefaultMaxNames);

  // The complete reply to a well-formed query.
  std::vector<std::uint8_t> answer(const DnsQuery& query);
  // The name behind a synthetic address (per-host mode only).
  std::optional<std::string> hostname_for(const Ipv4& address) const;
  // The address a name maps to right now, if any (per-host), or the single address.
  std::optional<Ipv4> address_of(const std::string& name) const;
  std::size_t mapped_names() const { return by_name_.size(); }
  Ipv4 single_address() const { return from_u32(base_ + 1); }

 private:
  Ipv4 assign(const std::string& lower_name);

  SyntheticHostMapping mapping_;
  std::uint32_t base_;
  std::uint32_t size_;  // addresses in the range
  std::size_t max_names_;
  std::uint32_t next_ = 2;  // offset of the next per-host address to try
  struct Entry {
    std::uint32_t address;
    std::list<std::string>::iterator lru;
  };
  std::list<std::string> lru_;  // most recently used first
  std::unordered_map<std::string, Entry> by_name_;
  std::unordered_map<std::uint32_t, std::string> by_address_;
};

// "localhost" and names under it.
bool is_localhost_name(const std::string& lower_name);

}  // namespace gondolin::net
