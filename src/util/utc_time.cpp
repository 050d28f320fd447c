#include "util/utc_time.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace gondolin {
namespace {

std::string format(bool with_ms) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                        tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (with_ms) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n), ".%03dZ", static_cast<int>(ms));
  } else {
    std::snprintf(buf + n, sizeof buf - static_cast<std::size_t>(n), "Z");
  }
  return buf;
}

}  // namespace

std::string now_rfc3339() { return format(false); }
std::string now_rfc3339_ms() { return format(true); }

}  // namespace gondolin
