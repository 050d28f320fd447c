// Random identifiers for file and directory names (snapshot ids, per-VM disk
// directories, staging directories).
#pragma once

#include <cstddef>
#include <string>

namespace gondolin {

// 2 * `bytes` lowercase hex digits from OpenSSL's CSPRNG; throws
// gondolin::Error (Internal) if it has no randomness.
std::string random_hex(std::size_t bytes);

}  // namespace gondolin
