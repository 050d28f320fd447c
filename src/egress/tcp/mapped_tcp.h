// Mapped TCP: a guest flow to a name the host mapped (--tcp-map) goes, as raw
// bytes, to the upstream the host chose. Logged when it opens (or fails) and
// when it closes, with the bytes moved each way.
#pragma once

#include <memory>

#include "egress/egress_context.h"
#include "gondolin/net_policy.h"
#include "net/guest_flow.h"

namespace gondolin::egress {

// Connects to the rule's upstream (loopback and internal addresses allowed:
// the user named it; bounded by the connect timeout and the per-VM upstream
// cap) and relays until both sides are done. A failed connect closes the
// flow without a byte, which the guest sees as a reset.
void relay_mapped_flow(const std::shared_ptr<EgressContext>& ctx, const TcpMap& rule, net::GuestFlow flow);

}  // namespace gondolin::egress
