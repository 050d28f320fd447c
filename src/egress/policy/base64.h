// Standard base64 (RFC 4648, with padding), for Basic authorization headers.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gondolin::egress {

std::string base64_encode(std::string_view data);
// Strict: only the standard alphabet; padding optional; nullopt otherwise.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace gondolin::egress
