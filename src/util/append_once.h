// Appends `item` unless `list` already holds it; keeps first-use order (the
// order names appear in egress-log lines and policy listings).
#pragma once

#include <algorithm>
#include <vector>

namespace gondolin {

template <typename T>
void append_once(std::vector<T>& list, const T& item) {
  if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

}  // namespace gondolin
