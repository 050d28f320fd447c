#include "util/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>

#include "gondolin/error.h"
#include "gondolin/log.h"

namespace gondolin {

spdlog::logger& log() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_color_mt("gondolin");
    l->set_pattern(std::getenv("GONDOLIN_LOG_TIMES") ? "%H:%M:%S.%e %^gondolin %l%$: %v" : "%^gondolin %l%$: %v");
    l->set_level(spdlog::level::warn);
    if (const char* env = std::getenv("GONDOLIN_LOG"); env && *env) {
      auto lvl = spdlog::level::from_str(env);
      if (lvl != spdlog::level::off || std::string(env) == "off") l->set_level(lvl);
    }
    return l;
  }();
  return *logger;
}

bool set_log_level_name(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") return false;
  log().set_level(lvl);
  return true;
}

void init_logging_from_env() { (void)log(); }

void set_log_level(const std::string& level) {
  if (!set_log_level_name(level))
    throw Error(ErrorKind::Usage, "unknown log level '" + level + "' (use trace, debug, info, warn, error or off)");
}

}  // namespace gondolin
