// The control protocol's version: the agent's Hello carries it, images and
// boot templates record it, and a mismatch means "rebuild the image". Bump
// it with every change to a frame (docs/protocol.md is the spec).
#pragma once

#include <cstdint>

namespace gondolin::proto {

inline constexpr std::uint8_t kProtocolVersion = 7;

}  // namespace gondolin::proto
