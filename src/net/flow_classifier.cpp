#include "net/flow_classifier.h"

#include <string_view>

namespace gondolin::net {
namespace {

constexpr std::size_t kMaxMethodLength = 32;

// RFC 9110 tchar.
bool is_tchar(std::uint8_t c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_visible(std::uint8_t c) { return c > 0x20 && c < 0x7f; }

// Does `prefix` match the start of `literal` (or all of it)?
PrefixVerdict match_literal(Bytes prefix, std::string_view literal, PrefixVerdict on_match) {
  const std::size_t n = std::min(prefix.size(), literal.size());
  for (std::size_t i = 0; i < n; ++i)
    if (prefix[i] != static_cast<std::uint8_t>(literal[i])) return PrefixVerdict::Other;
  return prefix.size() >= literal.size() ? on_match : PrefixVerdict::NeedMore;
}

PrefixVerdict classify_http(Bytes p) {
  std::size_t i = 0;
  while (i < p.size() && is_tchar(p[i])) {
    if (++i > kMaxMethodLength) return PrefixVerdict::Other;
  }
  if (i == p.size()) return PrefixVerdict::NeedMore;
  if (i == 0 || p[i] != ' ') return PrefixVerdict::Other;
  ++i;
  const std::size_t target_start = i;
  while (i < p.size() && is_visible(p[i])) ++i;
  if (i == p.size())
    return p.size() >= kMaxClassifyPrefix && i > target_start ? PrefixVerdict::Http : PrefixVerdict::NeedMore;
  if (i == target_start || p[i] != ' ') return PrefixVerdict::Other;
  ++i;
  constexpr std::string_view version = "HTTP/1.";
  for (std::size_t k = 0; k < version.size(); ++k, ++i) {
    if (i == p.size()) return PrefixVerdict::NeedMore;
    if (p[i] != static_cast<std::uint8_t>(version[k])) return PrefixVerdict::Other;
  }
  if (i == p.size()) return PrefixVerdict::NeedMore;
  return p[i] >= '0' && p[i] <= '9' ? PrefixVerdict::Http : PrefixVerdict::Other;
}

PrefixVerdict classify_tls(Bytes p) {
  // record: type 22 (handshake), version 3.x, length; then handshake type 1.
  if (p.empty()) return PrefixVerdict::NeedMore;
  if (p[0] != 0x16) return PrefixVerdict::Other;
  if (p.size() < 2) return PrefixVerdict::NeedMore;
  if (p[1] != 0x03) return PrefixVerdict::Other;
  if (p.size() < 3) return PrefixVerdict::NeedMore;
  if (p[2] > 0x04) return PrefixVerdict::Other;
  if (p.size() < 5) return PrefixVerdict::NeedMore;
  const std::size_t length = load_u16(&p[3]);
  if (length < 4 || length > 16384 + 2048) return PrefixVerdict::Other;
  if (p.size() < 6) return PrefixVerdict::NeedMore;
  return p[5] == 0x01 ? PrefixVerdict::Tls : PrefixVerdict::Other;
}

PrefixVerdict classify_ssh(Bytes p) {
  PrefixVerdict v2 = match_literal(p, "SSH-2.0-", PrefixVerdict::Ssh);
  if (v2 != PrefixVerdict::Other) return v2;
  return match_literal(p, "SSH-1.99-", PrefixVerdict::Ssh);
}

}  // namespace

PrefixVerdict classify_prefix(Bytes prefix) {
  if (prefix.empty()) return PrefixVerdict::NeedMore;
  bool undecided = false;
  for (auto classify : {classify_tls, classify_ssh, classify_http}) {
    PrefixVerdict v = classify(prefix);
    if (v == PrefixVerdict::NeedMore)
      undecided = true;
    else if (v != PrefixVerdict::Other)
      return v;
  }
  if (undecided && prefix.size() < kMaxClassifyPrefix) return PrefixVerdict::NeedMore;
  return PrefixVerdict::Other;
}

FlowKind final_kind(Bytes prefix) {
  switch (classify_prefix(prefix)) {
    case PrefixVerdict::Http: return FlowKind::Http;
    case PrefixVerdict::Tls: return FlowKind::Tls;
    case PrefixVerdict::Ssh: return FlowKind::Ssh;
    default: return FlowKind::Other;
  }
}

const char* to_string(FlowKind kind) {
  switch (kind) {
    case FlowKind::Http: return "http";
    case FlowKind::Tls: return "tls";
    case FlowKind::Ssh: return "ssh";
    case FlowKind::Other: return "other";
  }
  return "?";
}

}  // namespace gondolin::net
