// The guest's TLS, answered by the host: read the ClientHello, take its
// server name (or the name the guest resolved), mint a leaf certificate for
// it from the per-user CA, finish the handshake, and hand the decrypted
// connection to the same HTTP path as plain HTTP (which then requires the
// Host header to match the server name).
#pragma once

#include <memory>

#include "egress/egress_context.h"
#include "net/guest_flow.h"

namespace gondolin::egress {

// `slot` (the connection's place under the guest-connection cap) moves on to the HTTP session.
void intercept_tls(const std::shared_ptr<EgressContext>& ctx, net::GuestFlow flow, GuestSlot slot = {});

}  // namespace gondolin::egress
