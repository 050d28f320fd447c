#include "egress/policy/host_pattern.h"

#include <boost/asio/ip/address.hpp>

#include <charconv>

#include "egress/http/http_message.h"
#include "gondolin/error.h"

namespace gondolin::egress {
namespace {

constexpr std::size_t kMaxHostName = 253;
constexpr std::size_t kMaxLabel = 63;

bool is_name_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'; }

bool valid_dns_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxHostName) return false;
  std::size_t label = 0;
  for (char c : s) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
    } else if (is_name_char(c)) {
      if (++label > kMaxLabel) return false;
    } else {
      return false;
    }
  }
  return label > 0;
}

// Glob match with '*' as the only metacharacter; iterative with one backtrack point.
bool glob_match(std::string_view glob, std::string_view s) {
  std::size_t g = 0, i = 0, star = std::string_view::npos, mark = 0;
  while (i < s.size()) {
    if (g < glob.size() && glob[g] == '*') {
      star = g++;
      mark = i;
    } else if (g < glob.size() && glob[g] == s[i]) {
      ++g;
      ++i;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

}  // namespace

std::optional<std::string> normalize_host(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.find(':') != std::string_view::npos) {
    boost::system::error_code ec;
    auto a = boost::asio::ip::make_address_v6(std::string(host), ec);
    if (ec || a.scope_id() != 0) return std::nullopt;
    return a.to_string();
  }
  std::string h = to_lower(host);
  if (!h.empty() && h.back() == '.') h.pop_back();
  if (!valid_dns_name(h)) return std::nullopt;
  return h;
}

std::optional<HostPort> parse_authority(std::string_view authority) {
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(0, close + 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else if (std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return std::nullopt;
  }
  auto h = normalize_host(host);
  if (!h) return std::nullopt;
  HostPort out{*h, std::nullopt};
  if (!port.empty()) {
    unsigned value = 0;
    if (port.size() > 5) return std::nullopt;
    auto r = std::from_chars(port.data(), port.data() + port.size(), value);
    if (r.ec != std::errc() || r.ptr != port.data() + port.size() || value == 0 || value > 65535) return std::nullopt;
    out.port = static_cast<std::uint16_t>(value);
  }
  return out;
}

HostPattern::HostPattern(std::string_view pattern) : text_(pattern), glob_(to_lower(pattern)) {
  if (!glob_.empty() && glob_.back() == '.') glob_.pop_back();
  bool ok = !glob_.empty();
  for (char c : glob_)
    if (!(is_name_char(c) || c == '.' || c == '*' || c == ':' || c == '[' || c == ']')) ok = false;
  if (!ok)
    throw Error(ErrorKind::Usage, "invalid host pattern '" + text_ + "': use a host name with optional '*' wildcards");
  if (glob_.front() == '[' && glob_.back() == ']') glob_ = glob_.substr(1, glob_.size() - 2);
}

bool HostPattern::matches(std::string_view normalized_host) const { return glob_match(glob_, normalized_host); }

const HostPattern* HostPatternList::match(std::string_view normalized_host) const {
  for (const auto& p : patterns_)
    if (p.matches(normalized_host)) return &p;
  return nullptr;
}

}  // namespace gondolin::egress
