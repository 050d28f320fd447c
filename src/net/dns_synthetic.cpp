#include "net/dns_synthetic.h"

namespace gondolin::net {

bool is_localhost_name(const std::string& n) {
  static const std::string suffix = ".localhost";
  return n == "localhost" ||
         (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0);
}

SyntheticDns::SyntheticDns(SyntheticHostMapping mapping, const NetLayout& layout, std::size_t max_names)
    : mapping_(mapping),
      base_(to_u32(layout.synthetic_base) & ~((1u << (32 - layout.synthetic_prefix)) - 1)),
      size_(1u << (32 - layout.synthetic_prefix)),
      max_names_(max_names == 0 ? 1 : max_names) {}

Ipv4 SyntheticDns::assign(const std::string& name) {
  if (auto it = by_name_.find(name); it != by_name_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return from_u32(it->second.address);
  }
  if (by_name_.size() >= max_names_) {
    const std::string& oldest = lru_.back();
    auto victim = by_name_.find(oldest);
    by_address_.erase(victim->second.address);
    by_name_.erase(victim);
    lru_.pop_back();
  }
  // Offsets 0 and size-1 are the range's network and broadcast addresses, 1 is
  // the single-mode address. With far fewer names than addresses, a free one
  // is found within a few steps.
  std::uint32_t address = 0;
  for (;;) {
    if (next_ >= size_ - 1) next_ = 2;
    address = base_ + next_++;
    if (!by_address_.count(address)) break;
  }
  lru_.push_front(name);
  by_name_.emplace(name, Entry{address, lru_.begin()});
  by_address_.emplace(address, name);
  return from_u32(address);
}

std::vector<std::uint8_t> SyntheticDns::answer(const DnsQuery& q) {
  if (q.header.opcode() != 0) return build_dns_error(q.header, DnsRcode::NotImp);
  if (q.question.klass != kDnsClassIn) return build_dns_response(q, DnsRcode::Refused, {});
  const std::string name = ascii_lower(q.question.name);
  if (name.empty()) return build_dns_response(q, DnsRcode::NxDomain, {});
  const std::uint16_t type = q.question.type;
  std::vector<DnsRecord> answers;
  if (is_localhost_name(name)) {
    if (type == kDnsTypeA || type == kDnsTypeAny) answers.push_back({kDnsTypeA, kTtlSeconds, {127, 0, 0, 1}});
    if (type == kDnsTypeAaaa || type == kDnsTypeAny) {
      std::vector<std::uint8_t> v6(16, 0);
      v6[15] = 1;
      answers.push_back({kDnsTypeAaaa, kTtlSeconds, v6});
    }
    return build_dns_response(q, DnsRcode::NoError, answers);
  }
  // Only A is synthesised: no AAAA, so clients go straight to IPv4; other
  // types get an empty answer (the name exists, the record does not).
  if (type == kDnsTypeA || type == kDnsTypeAny) {
    Ipv4 a = mapping_ == SyntheticHostMapping::PerHost ? assign(name) : single_address();
    answers.push_back({kDnsTypeA, kTtlSeconds, {a.begin(), a.end()}});
  }
  return build_dns_response(q, DnsRcode::NoError, answers);
}

std::optional<std::string> SyntheticDns::hostname_for(const Ipv4& address) const {
  if (mapping_ != SyntheticHostMapping::PerHost) return std::nullopt;
  auto it = by_address_.find(to_u32(address));
  if (it == by_address_.end()) return std::nullopt;
  return it->second;
}

std::optional<Ipv4> SyntheticDns::address_of(const std::string& name) const {
  if (mapping_ != SyntheticHostMapping::PerHost) return single_address();
  auto it = by_name_.find(ascii_lower(name));
  if (it == by_name_.end()) return std::nullopt;
  return from_u32(it->second.address);
}

}  // namespace gondolin::net
