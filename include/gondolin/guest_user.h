// Who a command runs as in the guest.
#pragma once

#include <cstdint>

namespace gondolin {

// Numeric ids, as the guest kernel sees them. Supplementary groups: gid only.
struct GuestUser {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  bool operator==(const GuestUser&) const = default;
};

}  // namespace gondolin
