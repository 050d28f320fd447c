#include "image/embedded_assets.h"

extern "C" {
extern const char gondolin_agent_start[];
extern const char gondolin_agent_end[];
extern const char gondolin_default_spec_start[];
extern const char gondolin_default_spec_end[];
}

namespace gondolin::assets {

std::string_view guest_agent() {
  return {gondolin_agent_start, static_cast<std::size_t>(gondolin_agent_end - gondolin_agent_start)};
}

std::string_view default_image_spec() {
  return {gondolin_default_spec_start,
          static_cast<std::size_t>(gondolin_default_spec_end - gondolin_default_spec_start)};
}

}  // namespace gondolin::assets
