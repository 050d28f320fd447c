#include "config/test_knobs.h"

#include <memory>

namespace gondolin::config {

detail::NetworkTestKnobs& test_knobs(NetworkOptions& options) {
  auto own = options.test_knobs ? std::make_shared<detail::NetworkTestKnobs>(*options.test_knobs)
                                : std::make_shared<detail::NetworkTestKnobs>();
  options.test_knobs = own;
  return *own;
}

const detail::NetworkTestKnobs& test_knobs(const NetworkOptions& options) {
  static const detail::NetworkTestKnobs kNone;
  return options.test_knobs ? *options.test_knobs : kNone;
}

}  // namespace gondolin::config
