// Files compiled into the gondolin executable, so one binary can build images.
#pragma once

#include <string_view>

namespace gondolin::assets {

std::string_view guest_agent();         // the static gondolin-agent binary
std::string_view default_image_spec();  // images/debian-base.json

}  // namespace gondolin::assets
