#include "egress/upstream_connector.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "egress/policy/internal_address.h"

namespace gondolin::egress {
namespace {

namespace ip = boost::asio::ip;
using TlsTcp = boost::asio::ssl::stream<TcpSocket>;

std::string endpoint_text(const ip::tcp::endpoint& e) {
  return e.address().is_v6() ? "[" + e.address().to_string() + "]:" + std::to_string(e.port())
                             : e.address().to_string() + ":" + std::to_string(e.port());
}

class UpstreamAttempt : public std::enable_shared_from_this<UpstreamAttempt> {
 public:
  UpstreamAttempt(std::shared_ptr<EgressContext> ctx, UpstreamTarget target, UpstreamCallback done)
      : ctx_(std::move(ctx)),
        target_(std::move(target)),
        done_(std::move(done)),
        resolver_(ctx_->io),
        socket_(ctx_->io),
        timer_(ctx_->io) {}

  void start() {
    if (ctx_->upstream_connections >= ctx_->options.max_upstream_connections) {
      fail(503, "connection-cap",
           "too many upstream connections at once (limit " + std::to_string(ctx_->options.max_upstream_connections) +
               ")");
      return;
    }
    slot_ = UpstreamSlot(ctx_);
    timer_.expires_after(ctx_->options.upstream_connect_timeout);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->finished_) return;
      self->fail(504, "timeout", "connecting to " + self->target_.host + " timed out");
    });

    if (ctx_->policy.is_test_loopback(target_.host)) {
      exempt_ = true;
      connect({ip::tcp::endpoint(ip::make_address_v4("127.0.0.1"), target_.port)});
      return;
    }
    // A name the user allowed onto internal addresses (allow_internal_hosts),
    // or an upstream the user named (mapped TCP), skips the internal check.
    exempt_ = target_.host_named || ctx_->policy.may_be_internal(target_.host);
    boost::system::error_code ec;
    ip::address literal = ip::make_address(target_.host, ec);
    if (!ec) {
      connect_checked({ip::tcp::endpoint(literal, target_.port)});
      return;
    }
    resolver_.async_resolve(
        target_.host, std::to_string(target_.port),
        [self = shared_from_this()](const boost::system::error_code& rec, ip::tcp::resolver::results_type results) {
          if (self->finished_) return;
          if (rec) {
            self->fail(502, "dns", "cannot resolve " + self->target_.host + ": " + rec.message());
            return;
          }
          std::vector<ip::tcp::endpoint> eps;
          for (const auto& r : results) eps.push_back(r.endpoint());
          self->connect_checked(std::move(eps));
        });
  }

 private:
  // Only addresses that pass the internal-address check are ever dialled.
  void connect_checked(std::vector<ip::tcp::endpoint> candidates) {
    if (exempt_) return connect(std::move(candidates));
    std::vector<ip::tcp::endpoint> allowed;
    std::string refused;
    for (const auto& e : candidates) {
      if (auto kind = internal_address_kind(e.address())) {
        if (refused.empty()) refused = e.address().to_string() + ", " + *kind;
      } else {
        allowed.push_back(e);
      }
    }
    if (allowed.empty()) {
      fail(403, "internal-address",
           "host \"" + target_.host + "\" resolves to an internal address (" + (refused.empty() ? "none" : refused) +
               ")");
      return;
    }
    connect(std::move(allowed));
  }

  void connect(std::vector<ip::tcp::endpoint> endpoints) {
    boost::asio::async_connect(
        socket_, endpoints,
        [self = shared_from_this()](const boost::system::error_code& ec, const ip::tcp::endpoint& e) {
          if (self->finished_) return;
          if (ec) {
            self->fail(502, "connect", "cannot connect to " + self->target_.host + ": " + ec.message());
            return;
          }
          self->connected(e);
        });
  }

  void connected(const ip::tcp::endpoint& e) {
    // Re-check what the kernel actually connected to.
    boost::system::error_code ec;
    auto remote = socket_.remote_endpoint(ec);
    if (ec) {
      fail(502, "connect", "connection to " + target_.host + " failed: " + ec.message());
      return;
    }
    if (!exempt_) {
      if (auto kind = internal_address_kind(remote.address())) {
        fail(403, "internal-address",
             "host \"" + target_.host + "\" connected to an internal address (" + remote.address().to_string() + ", " +
                 *kind + ")");
        return;
      }
    }
    peer_ = endpoint_text(e);
    socket_.set_option(ip::tcp::no_delay(true), ec);
    if (!target_.tls) {
      succeed(make_plain_stream(std::move(socket_)));
      return;
    }
    tls_ = std::make_unique<TlsTcp>(std::move(socket_), ctx_->upstream_tls());
    SSL* ssl = tls_->native_handle();
    boost::system::error_code lit;
    ip::make_address(target_.host, lit);
    if (lit) {
      // SSL_set_tlsext_host_name is a macro with a C cast.
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(target_.host.c_str()));
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl, target_.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), target_.host.c_str());
    }
    tls_->async_handshake(
        boost::asio::ssl::stream_base::client, [self = shared_from_this()](const boost::system::error_code& hec) {
          if (self->finished_) return;
          if (hec) {
            long v = SSL_get_verify_result(self->tls_->native_handle());
            if (v != X509_V_OK) {
              self->fail(502, "tls-verify",
                         "upstream certificate for \"" + self->target_.host +
                             "\" failed verification: " + X509_verify_cert_error_string(v));
            } else {
              self->fail(502, "tls", "TLS handshake with " + self->target_.host + " failed: " + hec.message());
            }
            return;
          }
          self->succeed(make_tls_stream(std::move(self->tls_)));
        });
  }

  void succeed(std::unique_ptr<ByteStream> stream) {
    finished_ = true;
    timer_.cancel();
    auto c = std::make_unique<UpstreamConnection>();
    c->stream = std::move(stream);
    c->peer = peer_;
    c->slot = std::move(slot_);
    done_(std::move(c), UpstreamFailure{});
  }

  void fail(int status, std::string rule, std::string reason) {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    resolver_.cancel();
    boost::system::error_code ec;
    socket_.close(ec);
    if (tls_) tls_->lowest_layer().close(ec);
    slot_ = UpstreamSlot();
    // Always complete asynchronously, so callers never re-enter themselves.
    boost::asio::post(ctx_->io,
                      [done = std::move(done_), f = UpstreamFailure{status, std::move(rule), std::move(reason)}] {
                        done(nullptr, f);
                      });
  }

  std::shared_ptr<EgressContext> ctx_;
  UpstreamTarget target_;
  UpstreamCallback done_;
  ip::tcp::resolver resolver_;
  TcpSocket socket_;
  std::unique_ptr<TlsTcp> tls_;
  boost::asio::steady_timer timer_;
  UpstreamSlot slot_;
  std::string peer_;
  bool exempt_ = false;
  bool finished_ = false;
};

}  // namespace

void connect_upstream(const std::shared_ptr<EgressContext>& ctx, const UpstreamTarget& target, UpstreamCallback done) {
  std::make_shared<UpstreamAttempt>(ctx, target, std::move(done))->start();
}

}  // namespace gondolin::egress
