#include "egress/tls/tls_interceptor.h"

#include <openssl/ssl.h>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include "egress/http/http_session.h"
#include "egress/policy/host_pattern.h"
#include "egress/tls/tls_client_hello.h"
#include "gondolin/error.h"

namespace gondolin::egress {
namespace {

constexpr std::chrono::seconds kHandshakeTimeout{15};
using TlsGuest = boost::asio::ssl::stream<GuestSocket>;

class TlsAccept : public std::enable_shared_from_this<TlsAccept> {
 public:
  TlsAccept(std::shared_ptr<EgressContext> ctx, net::GuestFlow flow, GuestSlot slot)
      : ctx_(std::move(ctx)),
        slot_(std::move(slot)),
        info_(flow.info),
        hello_(std::move(flow.prefix)),
        socket_(std::move(flow.socket)),
        timer_(ctx_->io) {
    if (info_.hostname) dns_name_ = normalize_host(*info_.hostname);
  }

  void start() {
    timer_.expires_after(kHandshakeTimeout);
    timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || self->done_) return;
      self->fail("error", "guest-tls-handshake", "the guest's TLS handshake did not finish in time");
    });
    read_hello();
  }

 private:
  void read_hello() {
    ClientHelloScan scan = scan_client_hello(hello_);
    if (scan.state == ClientHelloScan::Invalid) {
      fail("deny", "bad-tls", "invalid TLS ClientHello: " + scan.error);
      return;
    }
    if (scan.state == ClientHelloScan::Done) {
      on_hello(scan);
      return;
    }
    if (hello_.size() >= kMaxClientHello) {
      fail("deny", "bad-tls", "TLS ClientHello too large");
      return;
    }
    std::size_t old = hello_.size();
    hello_.resize(std::min(kMaxClientHello, old + 4096));
    socket_.async_read_some(boost::asio::buffer(hello_.data() + old, hello_.size() - old),
                            [self = shared_from_this(), old](const boost::system::error_code& ec, std::size_t n) {
                              self->hello_.resize(old + n);
                              if (self->done_) return;
                              if (ec) {
                                self->fail("error", "guest-tls-handshake",
                                           "the guest closed the connection during its ClientHello");
                                return;
                              }
                              self->read_hello();
                            });
  }

  void on_hello(const ClientHelloScan& scan) {
    std::optional<std::string> name;
    if (scan.server_name) {
      name = normalize_host(*scan.server_name);
      if (!name) {
        fail("deny", "bad-tls", "invalid TLS server name \"" + scan.server_name->substr(0, 200) + "\"");
        return;
      }
    } else {
      name = dns_name_;  // no SNI: the name behind the dialled address, if per-host DNS knows it
    }
    if (!name) {
      fail("deny", "tls-no-server-name", "TLS without a server name (SNI) to a host gondolin cannot name");
      return;
    }
    host_ = *name;
    std::shared_ptr<const LeafCertificate> leaf;
    try {
      leaf = ctx_->ca->leaf_for(host_);
    } catch (const Error& e) {
      fail("error", "mitm-certificate", e.what());
      return;
    }
    stream_ = std::make_unique<TlsGuest>(std::move(socket_), ctx_->guest_tls);
    SSL* ssl = stream_->native_handle();
    if (SSL_use_certificate(ssl, leaf->certificate.get()) != 1 || SSL_use_PrivateKey(ssl, leaf->key) != 1) {
      fail("error", "mitm-certificate", "cannot use the certificate minted for " + host_);
      return;
    }
    stream_->async_handshake(
        boost::asio::ssl::stream_base::server, boost::asio::buffer(hello_),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
          if (self->done_) return;
          if (ec) {
            self->fail("error", "guest-tls-handshake",
                       "TLS handshake with the guest failed (does it trust the gondolin CA?): " + ec.message());
            return;
          }
          self->handed_over();
        });
  }

  void handed_over() {
    done_ = true;
    timer_.cancel();
    FlowFacts facts;
    facts.flow_id = info_.flow_id;
    facts.tls = true;
    facts.port = info_.dest_port;
    facts.dns_name = dns_name_;
    facts.sni = host_;
    std::make_shared<HttpSession>(ctx_, std::move(facts), make_tls_stream(std::move(stream_)), std::string_view{},
                                  std::move(slot_))
        ->start();
  }

  void fail(const std::string& decision, const std::string& rule, const std::string& reason) {
    if (done_) return;
    done_ = true;
    timer_.cancel();
    ctx_->log.record(EgressEvent::for_flow(info_.flow_id, "https", host_.empty() ? dns_name_.value_or("") : host_,
                                           info_.dest_port, rule)
                         .decided(decision, reason));
    boost::system::error_code ec;
    socket_.close(ec);
    if (stream_) stream_->lowest_layer().close(ec);
    // A pending handshake completes with an error on its own; it holds us alive until then.
  }

  std::shared_ptr<EgressContext> ctx_;
  GuestSlot slot_;
  net::GuestFlowInfo info_;
  std::string hello_;
  GuestSocket socket_;
  std::unique_ptr<TlsGuest> stream_;
  boost::asio::steady_timer timer_;
  std::optional<std::string> dns_name_;
  std::string host_;
  bool done_ = false;
};

}  // namespace

void intercept_tls(const std::shared_ptr<EgressContext>& ctx, net::GuestFlow flow, GuestSlot slot) {
  std::make_shared<TlsAccept>(ctx, std::move(flow), std::move(slot))->start();
}

}  // namespace gondolin::egress
