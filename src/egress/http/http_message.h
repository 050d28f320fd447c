// Parsed HTTP/1.x message heads and how their bodies are framed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gondolin/http_hooks.h"

namespace gondolin::egress {

enum class BodyFraming {
  None,           // no body
  ContentLength,  // exactly content_length bytes
  Chunked,        // chunked transfer coding
  UntilClose,     // responses only: the body ends when the connection does
};

struct RequestHead {
  std::string method;
  std::string target;     // as sent: origin, absolute or asterisk form
  int minor_version = 1;  // HTTP/1.<minor>
  HttpHeaders headers;    // every header, in order, as sent
  BodyFraming framing = BodyFraming::None;
  std::uint64_t content_length = 0;
  bool keep_alive = true;                      // the client wants the connection kept open afterwards
  bool websocket_upgrade = false;              // Upgrade: websocket with Connection: upgrade
  std::vector<std::string> connection_tokens;  // lower-cased Connection header tokens
};

struct ResponseHead {
  int minor_version = 1;
  int status = 0;
  std::string reason;
  HttpHeaders headers;
  // From the headers alone; use response_body_framing() for the real framing.
  BodyFraming framing = BodyFraming::UntilClose;
  std::uint64_t content_length = 0;
  bool keep_alive = true;
  std::vector<std::string> connection_tokens;
};

// The framing of a response body, which also depends on what was asked:
// HEAD requests, 1xx, 204 and 304 never have a body.
BodyFraming response_body_framing(const ResponseHead& response, std::string_view request_method);

// Case-insensitive ASCII comparison, for header names and tokens.
bool iequals(std::string_view a, std::string_view b);
std::string to_lower(std::string_view s);

// Hop-by-hop and framing headers: never forwarded as received.
bool is_hop_by_hop_header(std::string_view name);

// tchar from RFC 9110.
inline bool is_token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return true;
    default: return false;
  }
}

}  // namespace gondolin::egress
