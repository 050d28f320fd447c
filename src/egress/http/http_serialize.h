// Message heads as the host writes them: requests re-sent upstream and
// responses to the guest, framed by the host (never copied from the peer).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "egress/http/http_message.h"
#include "gondolin/http_hooks.h"

namespace gondolin::egress {

// How a body is framed on the way out.
struct OutFraming {
  BodyFraming framing = BodyFraming::None;  // None, ContentLength or Chunked (never UntilClose)
  std::uint64_t content_length = 0;
};

// "GET /x HTTP/1.1", Host (with the port unless it is the scheme's default),
// the request's headers, framing, and for websockets Connection/Upgrade.
std::string serialize_request_head(const HttpRequest& request, OutFraming framing, bool websocket_upgrade,
                                   std::string_view upgrade_value);

// "HTTP/1.1 <status> <reason>", headers, then the given framing and, when
// `close`, Connection: close. `raw_framing` skips framing headers entirely
// (HTTP/1.0 close-delimited bodies, HEAD answers that keep upstream's length).
std::string serialize_response_head(const HttpResponse& response, OutFraming framing, bool close,
                                    bool raw_framing = false, std::string_view extra_lines = {});

// A complete small response made by gondolin itself, e.g. a 403 with
// "gondolin: host "x" is not in the allowlist\n".
std::string make_text_response(int status, std::string_view text, bool close);

const char* reason_phrase(int status);

// Header fields that are safe to emit (token name, no CR/LF/NUL in the value).
bool is_safe_header(const HttpHeader& h);

}  // namespace gondolin::egress
