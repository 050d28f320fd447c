// The grammar of --host-secret (and `gondolin policy ID secret set`):
//   NAME@HOST[,HOST...][:SCOPE][=@FILE|=@-|=VALUE]
//   SCOPE = [METHOD[,METHOD...]][/PREFIX[,/PREFIX...]]
// e.g. TOKEN@api.example.com:GET,POST/v1/ or TOKEN@api.example.com:/v1/,/v2/.
// Failures are a gondolin::Error (Usage) naming the secret (never its value).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "gondolin/net_policy.h"

namespace gondolin::config {

// An environment variable name (a secret's NAME, passphrase-env's VAR, -e's
// KEY): letters, digits and '_', not starting with a digit.
bool valid_env_name(std::string_view name);

// Without =VALUE the value is the host's $NAME; =@FILE reads a file (at most
// 64 KiB), =@- one line of stdin; a literal =VALUE is taken with a warning
// (every local user sees it in `ps`).
HostSecret parse_host_secret(const std::string& text);

// Methods are HTTP tokens; path prefixes start with '/', hold no space,
// control byte, '?', '#' or ',', and are at most 1024 bytes. Throws
// gondolin::Error (Usage) naming the secret and the bad entry.
void check_secret_scope(const HostSecret& secret);

// A placeholder shape, PREFIX[:LENGTH[:ALPHABET]] (--secret-placeholder
// NAME=..., `policy ID secret set --placeholder ...`): ALPHABET is hex (the
// default), HEX, alnum, alpha, lower, upper, digits, or the characters
// themselves; LENGTH defaults to the fewest characters that carry 128 random
// bits. `flag` names the source in errors. (SecretStore checks the rest.)
HostSecret::Shape parse_placeholder_shape(std::string_view text, std::string_view flag);
// NAME=SHAPE, as --secret-placeholder takes it.
std::pair<std::string, HostSecret::Shape> parse_named_placeholder_shape(std::string_view text);

}  // namespace gondolin::config
