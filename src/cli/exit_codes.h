// Exit statuses of the gondolin CLI, following `docker run`.
#pragma once

#include "gondolin/error.h"

namespace gondolin::cli {

inline constexpr int kExitGondolinFailed = 125;  // gondolin itself could not do its job
inline constexpr int kExitNotExecutable = 126;
inline constexpr int kExitNotFound = 127;
inline constexpr int kExitTimedOut = 124;  // --timeout expired (as timeout(1))
inline constexpr int kExitDetached = 130;  // attach's detach key: the command keeps running

}  // namespace gondolin::cli
