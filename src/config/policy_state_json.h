// PolicyState (gondolin/live_policy.h) as JSON: what `gondolin policy ID
// show --json` prints and what the session socket carries. Never a secret's
// value. Keys: allow_hosts, deny_hosts, allow_internal_hosts,
// allow_all_hosts, secrets [{name, hosts, methods, path_prefixes,
// placeholder}], revoked_secrets.
#pragma once

#include <string>

#include "gondolin/live_policy.h"

namespace gondolin::config {

std::string policy_state_to_json(const PolicyState& state);
// Strict: throws gondolin::Error (Usage) naming what is malformed.
PolicyState policy_state_from_json(const std::string& text);

}  // namespace gondolin::config
