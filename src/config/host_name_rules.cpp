#include "config/host_name_rules.h"

#include <charconv>

namespace gondolin::config {

std::string normalize_host_name(std::string_view host) {
  std::string h(host);
  if (!h.empty() && h.back() == '.') h.pop_back();
  for (char& c : h)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return h;
}

std::string dns_name_problem(std::string_view host) {
  if (host.empty()) return "missing host name";
  if (host.size() > 253) return "host name longer than 253 characters";
  std::size_t label_start = 0;
  for (std::size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      std::string_view label = host.substr(label_start, i - label_start);
      if (label.empty()) return "empty label in host name";
      if (label.size() > 63) return "label longer than 63 characters";
      if (label.front() == '-' || label.back() == '-') return "a label starts or ends with '-'";
      label_start = i + 1;
      continue;
    }
    const char c = host[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return "host names may only contain letters, digits, '-', '_' and '.'";
  }
  return {};
}

bool ends_in_numeric_label(std::string_view host) {
  const auto dot = host.rfind('.');
  const std::string_view last = dot == std::string_view::npos ? host : host.substr(dot + 1);
  return !last.empty() && last.find_first_not_of("0123456789") == std::string_view::npos;
}

bool parse_port(std::string_view text, std::uint16_t& out) {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value == 0 || value > 65535) return false;
  out = static_cast<std::uint16_t>(value);
  return true;
}

}  // namespace gondolin::config
