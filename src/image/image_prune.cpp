#include "image/image_prune.h"

namespace gondolin::image {

std::vector<Image> images_to_prune(const std::vector<Image>& images, const std::set<std::string>& in_use,
                                   std::uint32_t agent_protocol) {
  std::set<std::string> newest_seen, usable_seen;  // name:tag keys
  std::vector<Image> out;
  for (const auto& img : images) {
    const std::string key = img.display_name();
    const bool newest = newest_seen.insert(key).second;
    const bool usable = img.manifest.agent_protocol == agent_protocol && usable_seen.insert(key).second;
    if (newest || usable || in_use.count(img.manifest.id)) continue;
    out.push_back(img);
  }
  return out;
}

}  // namespace gondolin::image
