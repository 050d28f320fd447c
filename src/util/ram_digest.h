// The digest a snapshot keeps of its RAM image (vm/ram_image.h writes and
// checks it, session/snapshot_manifest.h stores it): an algorithm and its
// value in lowercase hex. One table names the algorithms for both.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace gondolin {

struct RamDigestAlgorithm {
  std::string_view name;   // the manifest's key
  std::size_t hex_digits;  // the value's length
};

// Saves use the first; the others are read (and checked) in older snapshots.
inline constexpr RamDigestAlgorithm kRamDigestAlgorithms[] = {{"crc32c", 8}, {"sha256", 64}};

struct RamDigest {
  std::string algorithm;  // a name in kRamDigestAlgorithms; empty: no RAM image
  std::string hex;

  bool empty() const { return algorithm.empty(); }
  bool operator==(const RamDigest&) const = default;
};

}  // namespace gondolin
