// Everything the HTTP/TLS flows of one VM share: policy, audit log, hooks,
// the MITM CA, TLS contexts, limits and the upstream connection count. Owned
// by shared_ptr so a flow outlives nothing it uses.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <memory>

#include "egress/cert_authority.h"
#include "egress/egress_log.h"
#include "egress/egress_policy.h"
#include "gondolin/http_hooks.h"
#include "gondolin/net_policy.h"

namespace gondolin::egress {

struct EgressContext {
  // Throws gondolin::Error for invalid options or an unreadable upstream CA file.
  EgressContext(boost::asio::io_context& io, const NetworkOptions& options, std::shared_ptr<CertificateAuthority> ca);

  boost::asio::io_context& io;
  NetworkOptions options;
  EgressPolicy policy;
  EgressLog log;
  std::shared_ptr<HttpHooks> hooks;
  std::shared_ptr<CertificateAuthority> ca;
  boost::asio::ssl::context upstream_tls;  // client side: verifies upstream servers
  boost::asio::ssl::context guest_tls;     // server side: the guest's TLS, answered with minted leaves
  std::size_t upstream_connections = 0;    // open right now, capped by options.max_upstream_connections
};

// Holds one of the capped upstream connections; gives it back when destroyed.
class UpstreamSlot {
 public:
  UpstreamSlot() = default;
  explicit UpstreamSlot(std::shared_ptr<EgressContext> ctx) : ctx_(std::move(ctx)) { ++ctx_->upstream_connections; }
  UpstreamSlot(UpstreamSlot&& o) noexcept = default;
  UpstreamSlot& operator=(UpstreamSlot&& o) noexcept {
    release();
    ctx_ = std::move(o.ctx_);
    return *this;
  }
  ~UpstreamSlot() { release(); }

 private:
  void release() {
    if (ctx_) --ctx_->upstream_connections;
    ctx_.reset();
  }
  std::shared_ptr<EgressContext> ctx_;
};

}  // namespace gondolin::egress
