// Which images `gondolin image prune` deletes: every build that no name:tag
// resolves to any more and that nothing still needs. Pure, so it is tested
// without a store.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "gondolin/image.h"

namespace gondolin::image {

// `images` as ImageStore::list() returns them (newest first). Kept: for each
// name:tag the newest build, and the newest one `agent_protocol` can talk to
// (what resolve() picks); every id in `in_use` (snapshots, running sessions).
// Returns the rest, in the order given.
std::vector<Image> images_to_prune(const std::vector<Image>& images, const std::set<std::string>& in_use,
                                   std::uint32_t agent_protocol);

}  // namespace gondolin::image
