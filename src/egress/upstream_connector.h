// Opens the host's own connection to an upstream server: resolve on the host,
// drop internal addresses (loopback, private, link-local, ...) unless the name
// is a listed test loopback host, connect to an address that passed the
// check (so DNS rebinding cannot sneak one in), and for https do TLS
// verified against the host trust store and the host name. Bounded by the
// connect timeout and the per-VM connection cap.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "egress/byte_stream.h"
#include "egress/egress_context.h"

namespace gondolin::egress {

struct UpstreamTarget {
  std::string host;  // normalized
  std::uint16_t port = 0;
  bool tls = false;
  // Named by the user on the host (--tcp-map): internal and loopback
  // addresses are allowed, as for test loopback hosts.
  bool host_named = false;
};

struct UpstreamConnection {
  std::unique_ptr<ByteStream> stream;
  std::string peer;  // "ip:port" actually connected to
  UpstreamSlot slot;
};

struct UpstreamFailure {
  int status = 502;  // 403 (policy: internal address), 502, 503 (cap), 504 (timeout)
  std::string rule;  // log rule: internal-address, dns, connect, tls-verify, tls, timeout, connection-cap
  std::string reason;
};

using UpstreamCallback = std::function<void(std::unique_ptr<UpstreamConnection>, const UpstreamFailure&)>;

// Calls `done` exactly once, on the io thread, with a connection or a failure.
void connect_upstream(const std::shared_ptr<EgressContext>& ctx, const UpstreamTarget& target, UpstreamCallback done);

}  // namespace gondolin::egress
