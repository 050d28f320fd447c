#include "egress/egress_context.h"

#include <openssl/ssl.h>

#include "config/test_knobs.h"
#include "gondolin/error.h"

namespace gondolin::egress {
namespace {

constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// The guest may offer h2; we speak HTTP/1.1 to it (or no ALPN at all).
int select_http11(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                  void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kAlpnHttp11, sizeof kAlpnHttp11, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

EgressContext::EgressContext(boost::asio::io_context& io_context, const NetworkOptions& o,
                             std::shared_ptr<CertificateAuthority> authority)
    : io(io_context),
      options(o),
      policy(o),
      log(o.egress_log_path),
      hooks(o.http_hooks),
      ca(std::move(authority)),
      guest_tls(boost::asio::ssl::context::tls_server),
      upstream_tls_(boost::asio::ssl::context::tls_client) {
  filters = std::make_shared<const FilterChain>(*this);
  SSL_CTX* up = upstream_tls_.native_handle();
  SSL_CTX_set_min_proto_version(up, TLS1_2_VERSION);
  upstream_tls_.set_verify_mode(boost::asio::ssl::verify_peer);
  boost::system::error_code ec;
  if (const std::string& test_ca = config::test_knobs(o).extra_upstream_ca_file; !test_ca.empty()) {
    upstream_tls_.load_verify_file(test_ca, ec);
    if (ec) throw Error(ErrorKind::Usage, "cannot load upstream CA file '" + test_ca + "': " + ec.message());
  }
  SSL_CTX_set_alpn_protos(up, kAlpnHttp11, sizeof kAlpnHttp11);

  SSL_CTX* g = guest_tls.native_handle();
  SSL_CTX_set_min_proto_version(g, TLS1_2_VERSION);
  SSL_CTX_set_alpn_select_cb(g, select_http11, nullptr);
  if (o.max_upstream_connections == 0) throw Error(ErrorKind::Usage, "max_upstream_connections must be at least 1");
  if (o.max_guest_connections == 0) throw Error(ErrorKind::Usage, "max_guest_connections must be at least 1");
}

boost::asio::ssl::context& EgressContext::upstream_tls() {
  if (!upstream_trust_loaded_) {
    upstream_trust_loaded_ = true;
    boost::system::error_code ec;
    upstream_tls_.set_default_verify_paths(ec);  // no system store: only the extra CA, if any, is trusted
  }
  return upstream_tls_;
}

void EgressContext::bind_flow(std::weak_ptr<PolicyBoundFlow> flow) {
  if (bound_flows.size() % 256 == 255) std::erase_if(bound_flows, [](const auto& w) { return w.expired(); });
  bound_flows.push_back(std::move(flow));
}

}  // namespace gondolin::egress
