#include "egress/tls/tls_client_hello.h"

#include <cstdint>

namespace gondolin::egress {
namespace {

constexpr std::uint8_t kHandshakeRecord = 22;
constexpr std::uint8_t kClientHello = 1;
constexpr std::uint16_t kServerNameExtension = 0;
constexpr std::size_t kMaxRecordPayload = 16384 + 2048;

// A bounds-checked reader; any overrun sets `ok` to false.
struct Reader {
  std::string_view d;
  bool ok = true;
  std::uint32_t u(std::size_t bytes) {
    if (d.size() < bytes) {
      ok = false;
      return 0;
    }
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < bytes; ++i) v = (v << 8) | static_cast<std::uint8_t>(d[i]);
    d.remove_prefix(bytes);
    return v;
  }
  std::string_view bytes(std::size_t n) {
    if (d.size() < n) {
      ok = false;
      return {};
    }
    auto out = d.substr(0, n);
    d.remove_prefix(n);
    return out;
  }
  std::string_view vec(std::size_t len_bytes) { return bytes(u(len_bytes)); }
};

ClientHelloScan invalid(std::string why) {
  ClientHelloScan s;
  s.state = ClientHelloScan::Invalid;
  s.error = std::move(why);
  return s;
}

}  // namespace

ClientHelloScan scan_client_hello(std::string_view data) {
  // Reassemble handshake bytes from consecutive handshake records.
  std::string handshake;
  std::size_t need = 0;  // total handshake message size once known
  while (true) {
    if (data.size() < 5) return ClientHelloScan{};
    if (static_cast<std::uint8_t>(data[0]) != kHandshakeRecord) return invalid("not a TLS handshake record");
    if (data[1] != 3) return invalid("unsupported TLS record version");
    std::size_t len =
        (static_cast<std::size_t>(static_cast<std::uint8_t>(data[3])) << 8) | static_cast<std::uint8_t>(data[4]);
    if (len == 0 || len > kMaxRecordPayload) return invalid("invalid TLS record length");
    if (data.size() < 5 + len) return ClientHelloScan{};
    handshake.append(data.substr(5, len));
    data.remove_prefix(5 + len);
    if (need == 0 && handshake.size() >= 4) {
      if (static_cast<std::uint8_t>(handshake[0]) != kClientHello)
        return invalid("first handshake message is not a ClientHello");
      need = 4 + ((static_cast<std::size_t>(static_cast<std::uint8_t>(handshake[1])) << 16) |
                  (static_cast<std::size_t>(static_cast<std::uint8_t>(handshake[2])) << 8) |
                  static_cast<std::uint8_t>(handshake[3]));
      if (need > kMaxClientHello) return invalid("ClientHello too large");
    }
    if (need != 0 && handshake.size() >= need) break;
    if (handshake.size() > kMaxClientHello) return invalid("ClientHello too large");
  }
  Reader r{std::string_view(handshake).substr(4, need - 4)};
  r.u(2);       // legacy_version
  r.bytes(32);  // random
  if (r.vec(1).size() > 32) return invalid("invalid session id");
  r.vec(2);  // cipher suites
  r.vec(1);  // compression methods
  if (!r.ok) return invalid("truncated ClientHello");
  ClientHelloScan out;
  out.state = ClientHelloScan::Done;
  if (r.d.empty()) return out;  // no extensions at all
  Reader ext{r.vec(2)};
  if (!r.ok) return invalid("truncated ClientHello extensions");
  while (!ext.d.empty()) {
    std::uint32_t type = ext.u(2);
    Reader body{ext.vec(2)};
    if (!ext.ok) return invalid("truncated ClientHello extension");
    if (type != kServerNameExtension) continue;
    Reader list{body.vec(2)};
    while (body.ok && !list.d.empty()) {
      std::uint32_t name_type = list.u(1);
      std::string_view name = list.vec(2);
      if (!list.ok) return invalid("truncated server_name extension");
      if (name_type == 0 && !out.server_name) {
        if (name.empty()) return invalid("empty server name");
        out.server_name = std::string(name);
      }
    }
    if (!body.ok) return invalid("truncated server_name extension");
  }
  return out;
}

}  // namespace gondolin::egress
