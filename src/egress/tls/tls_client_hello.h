// Reads the server name (SNI) from the first bytes of a TLS connection. Pure
// and bounded, so it can be fuzzed; the handshake itself is OpenSSL's.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace gondolin::egress {

struct ClientHelloScan {
  enum State { NeedMore, Done, Invalid };
  State state = NeedMore;
  std::optional<std::string> server_name;  // host_name from SNI, as sent
  std::string error;                       // Invalid: why
};

// `data` is everything the client sent so far. Handles a ClientHello split
// over several records, up to kMaxClientHello bytes.
ClientHelloScan scan_client_hello(std::string_view data);

inline constexpr std::size_t kMaxClientHello = 65536;

}  // namespace gondolin::egress
