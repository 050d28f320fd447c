// The one shape of a bad setting's error: "invalid FLAG 'TEXT': WHY", one
// line, kind Usage. FLAG names where the text came from ("--tcp-map",
// "\"listen\" entry" of a policy file).
#pragma once

#include <string>
#include <string_view>

#include "gondolin/error.h"

namespace gondolin::config {

inline Error invalid_setting(std::string_view flag, std::string_view text, std::string_view why) {
  return Error(ErrorKind::Usage, "invalid " + std::string(flag) + " '" + std::string(text) + "': " + std::string(why));
}

}  // namespace gondolin::config
