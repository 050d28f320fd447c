// Changes to a running VM's HTTP/HTTPS policy (gondolin/live_policy.h).
//
// Theory of operation: EgressContext keeps the NetworkOptions the policy was
// built from. A change edits a copy of them (with every secret's current
// placeholder written in, so a replaced secret keeps the one the guest
// holds), builds a whole new EgressPolicy from the copy (which validates
// everything: a bad change throws and changes nothing), then swaps both in.
// Requests already past the filter chain finish; every later request sees
// the new policy. Then each PolicyBoundFlow is rechecked and closes itself
// if the change took away its host or a secret it used. One JSON line in the
// egress log records the change and the caller's uid.
//
// Everything here runs on the VM's io thread.
#pragma once

#include <sys/types.h>

#include "egress/egress_context.h"
#include "gondolin/live_policy.h"

namespace gondolin::egress {

PolicyState policy_state(const EgressContext& ctx);

// Throws gondolin::Error (Usage) naming what is wrong; then nothing changed.
PolicyState change_policy(EgressContext& ctx, const PolicyChange& change, uid_t uid);

// A resumed session's revoked secrets (from its snapshot): their
// placeholders are refused again. Before any flow; throws gondolin::Error
// (Usage) naming a name or placeholder that cannot be one.
void restore_revoked_secrets(EgressContext& ctx, std::vector<RevokedSecret> revoked);

}  // namespace gondolin::egress
