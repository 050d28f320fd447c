// Lowercase hex, the one way digests, checksums and random identifiers are
// written and checked.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace gondolin {

// Two lowercase hex digits per byte, in order.
std::string lower_hex(std::string_view bytes);
// Only the digits lower_hex writes (0-9, a-f); true for "" too.
bool is_lower_hex(std::string_view s);
// Exactly `digits` of them (a SHA-256 is 64, a CRC-32C 8, an image id 16).
inline bool is_lower_hex(std::string_view s, std::size_t digits) { return s.size() == digits && is_lower_hex(s); }

}  // namespace gondolin
