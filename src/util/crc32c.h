// CRC-32C (Castagnoli, the iSCSI/ext4/btrfs checksum): a check against
// damage, not against tampering. Whoever can rewrite checked data can
// rewrite the check beside it too; use it where SHA-256 would only cost
// time (a resume checks ~70 MB of guest RAM: ~10 ms here, SHA-256 ~60 ms).
//
// Invariant: crc32c(a + b) == crc32c_extend(crc32c(a), b); both paths (the
// SSE4.2 instruction where the CPU has it, a table elsewhere) agree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gondolin {

std::uint32_t crc32c_extend(std::uint32_t crc, std::string_view data);
inline std::uint32_t crc32c(std::string_view data) { return crc32c_extend(0, data); }
// The table path alone, for tests of the agreement above.
std::uint32_t crc32c_extend_portable(std::uint32_t crc, std::string_view data);
// Eight lowercase hex digits, most significant first.
std::string crc32c_hex(std::uint32_t crc);

}  // namespace gondolin
