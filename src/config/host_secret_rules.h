// The grammar of --host-secret: NAME@HOST[,HOST...][=@FILE|=@-|=VALUE].
// Failures are a gondolin::Error (Usage) naming the secret (never its value).
#pragma once

#include <string>

#include "gondolin/net_policy.h"

namespace gondolin::config {

// Without =VALUE the value is the host's $NAME; =@FILE reads a file (at most
// 64 KiB), =@- one line of stdin; a literal =VALUE is taken with a warning
// (every local user sees it in `ps`).
HostSecret parse_host_secret(const std::string& text);

}  // namespace gondolin::config
