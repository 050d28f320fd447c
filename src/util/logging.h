// The library's logger. Everything goes to stderr, never to a command's stdout.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace gondolin {

spdlog::logger& log();

// Applies $GONDOLIN_LOG if set (default level: warn). Returns false for an
// unknown level name.
bool set_log_level_name(const std::string& level);
void init_logging_from_env();

}  // namespace gondolin
