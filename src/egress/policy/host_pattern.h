// Host names as policy sees them, and the allowlist's '*' patterns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gondolin::egress {

// Lower-cases and drops one trailing dot. Accepts DNS names (letters, digits,
// '-', '_', dots; labels 1..63, total ≤ 253), IPv4 literals and IPv6 literals
// (with or without brackets; returned without). nullopt for anything else.
std::optional<std::string> normalize_host(std::string_view host);

struct HostPort {
  std::string host;                   // normalized
  std::optional<std::uint16_t> port;  // if the authority named one
};

// "example.com", "example.com:8080", "[::1]:443". nullopt if malformed.
std::optional<HostPort> parse_authority(std::string_view authority);

// A case-insensitive glob over host names: '*' matches any run of characters
// (dots included), so "*.example.com" matches "a.b.example.com" but not
// "example.com", and "*" matches every host.
class HostPattern {
 public:
  // Throws gondolin::Error (Usage) naming the pattern if it is empty or has
  // characters that cannot occur in a host name.
  explicit HostPattern(std::string_view pattern);
  bool matches(std::string_view normalized_host) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;  // as given
  std::string glob_;  // lower-cased, trailing dot removed
};

class HostPatternList {
 public:
  void add(std::string_view pattern) { patterns_.emplace_back(pattern); }
  // The first pattern matching the host, if any.
  const HostPattern* match(std::string_view normalized_host) const;
  bool empty() const { return patterns_.empty(); }

 private:
  std::vector<HostPattern> patterns_;
};

}  // namespace gondolin::egress
