// The library's log level. Everything gondolin logs goes to stderr, never to
// a command's stdout; the default level is warn, or $GONDOLIN_LOG.
#pragma once

#include <string>

namespace gondolin {

// trace, debug, info, warn, error or off; throws gondolin::Error (Usage) for
// any other name.
void set_log_level(const std::string& level);

}  // namespace gondolin
