// PolicyChange <-> SessionPolicyRequest, both directions in one place.
#pragma once

#include <optional>

#include "gondolin/live_policy.h"
#include "proto/session_messages.h"

namespace gondolin::session {

// nullopt: show the policy, change nothing.
proto::SessionPolicyRequest policy_request(const std::optional<PolicyChange>& change);
std::optional<PolicyChange> policy_change(const proto::SessionPolicyRequest& request);

}  // namespace gondolin::session
