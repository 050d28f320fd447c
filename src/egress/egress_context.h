// Everything the HTTP/TLS flows of one VM share: policy, audit log, hooks,
// the MITM CA, TLS contexts, limits and the upstream connection count. Owned
// by shared_ptr so a flow outlives nothing it uses.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <memory>

#include "egress/egress_log.h"
#include "egress/http/filter_chain.h"
#include "egress/policy/egress_policy.h"
#include "egress/tls/cert_authority.h"
#include "gondolin/http_hooks.h"
#include "gondolin/net_policy.h"

namespace gondolin::egress {

// A connection that carries policy decisions past the request that made
// them (a keep-alive HTTP/TLS connection, a WebSocket tunnel): when the
// policy changes, each is asked again and closes itself if the new policy
// takes away its host or a secret it used. io thread only.
class PolicyBoundFlow {
 public:
  virtual ~PolicyBoundFlow() = default;
  // True if the flow closed.
  virtual bool recheck(const EgressPolicy& policy) = 0;
};

struct EgressContext {
  // Throws gondolin::Error for invalid options or an unreadable upstream CA file.
  EgressContext(boost::asio::io_context& io, const NetworkOptions& options, std::shared_ptr<CertificateAuthority> ca);

  boost::asio::io_context& io;
  // The options as they stand: live policy changes (egress/live_policy.h)
  // edit options' policy fields and rebuild `policy` from them, on the io
  // thread; the filter chain reads `policy` in place.
  NetworkOptions options;
  EgressPolicy policy;
  std::vector<RevokedSecret> revoked_secrets;
  std::vector<std::weak_ptr<PolicyBoundFlow>> bound_flows;
  EgressLog log;
  std::shared_ptr<HttpHooks> hooks;
  // The decisions on every HTTP exchange (policy, hooks, secrets), in order.
  std::shared_ptr<const FilterChain> filters;
  std::shared_ptr<CertificateAuthority> ca;
  // Client side: verifies upstream servers. The system trust store is read
  // on the first upstream TLS connection (io thread), not at start: parsing
  // it costs ~25 ms, a tenth of a templated start, and most sessions never
  // make an HTTPS request.
  boost::asio::ssl::context& upstream_tls();
  // Registers a flow for live policy rechecks (and sweeps expired ones now and then).
  void bind_flow(std::weak_ptr<PolicyBoundFlow> flow);
  boost::asio::ssl::context guest_tls;   // server side: the guest's TLS, answered with minted leaves
  std::size_t upstream_connections = 0;  // open right now, capped by options.max_upstream_connections
  // HTTP/TLS guest connections being served right now, capped by
  // options.max_guest_connections: each holds ~130 KiB of fixed buffers.
  std::size_t guest_connections = 0;
  bool guest_cap_reported = false;  // one warning per episode of hitting the cap

 private:
  boost::asio::ssl::context upstream_tls_;
  bool upstream_trust_loaded_ = false;
};

// Holds one unit of a capped count in the context (an upstream connection,
// a guest connection being served); gives it back when destroyed.
template <std::size_t EgressContext::*Count>
class CountedSlot {
 public:
  CountedSlot() = default;
  explicit CountedSlot(std::shared_ptr<EgressContext> ctx) : ctx_(std::move(ctx)) { ++((*ctx_).*Count); }
  CountedSlot(CountedSlot&& o) noexcept = default;
  CountedSlot& operator=(CountedSlot&& o) noexcept {
    release();
    ctx_ = std::move(o.ctx_);
    return *this;
  }
  ~CountedSlot() { release(); }

 private:
  void release() {
    if (ctx_) --((*ctx_).*Count);
    ctx_.reset();
  }
  std::shared_ptr<EgressContext> ctx_;
};

using UpstreamSlot = CountedSlot<&EgressContext::upstream_connections>;
using GuestSlot = CountedSlot<&EgressContext::guest_connections>;

}  // namespace gondolin::egress
