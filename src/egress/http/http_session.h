// One guest HTTP/1.1 connection (plain, or decrypted HTTPS) proxied request by
// request. Theory of operation:
//
//   guest bytes -> request head (strict parser) -> FilterChain (interpret,
//   hooks, authorize: continue / refuse / answer on the host) -> upstream
//   connection (kept alive and reused per scheme+host+port) -> request
//   head re-serialized by the host -> request body (BodyRelay, guest ->
//   upstream) | response head (strict parser) -> FilterChain on_response ->
//   response head re-framed by the host -> response body (BodyRelay,
//   upstream -> guest) -> next request, or close.
//
// A 101 to a WebSocket upgrade turns the connection into a WebSocketTunnel.
// Pipelined requests wait their turn in the bounded guest input buffer;
// nothing is ever buffered whole. Deadlines: a one-second tick compares the
// three deadlines below with the clock; an idle or stalled guest is cut, a
// silent upstream gets a 504.
#pragma once

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "egress/byte_stream.h"
#include "egress/egress_context.h"
#include "egress/http/body_relay.h"
#include "egress/http/filter_chain.h"
#include "egress/http/flat_buffer.h"
#include "egress/http/http_parser.h"
#include "egress/http/websocket_tunnel.h"
#include "egress/upstream_connector.h"

namespace gondolin::egress {

class HttpSession : public PolicyBoundFlow, public std::enable_shared_from_this<HttpSession> {
 public:
  static constexpr std::size_t kGuestBuffer = 64 * 1024 + 1024;  // a maximal head fits
  static constexpr std::size_t kUpstreamBuffer = 64 * 1024 + 1024;

  // `slot` counts this connection against the VM's guest-connection cap for
  // the session's whole life (empty in tests that drive a session directly).
  HttpSession(std::shared_ptr<EgressContext> ctx, FlowFacts flow, std::unique_ptr<ByteStream> guest,
              std::string_view prefix, GuestSlot slot = {});
  ~HttpSession() override;
  void start();
  // Closes the connection if `policy` denies the host its exchanges went to
  // or takes away a secret they used (live policy changes).
  bool recheck(const EgressPolicy& policy) override;

 private:
  using Clock = std::chrono::steady_clock;
  enum class Phase { RequestHead, Exchange, Tunnel, Closing };

  // Where the current exchange stands (reset for each request).
  struct Progress {
    bool request_done = false;
    bool response_done = false;
    bool response_started = false;  // any response byte went to the guest
    bool close_after = false;       // the guest connection ends with this exchange
    bool retried = false;           // one fresh upstream after a stale keep-alive one
    bool allow_logged = false;
    BodyFraming response_framing = BodyFraming::None;
  };
  // The connection to upstream, reused across exchanges to the same origin.
  struct Upstream {
    std::shared_ptr<UpstreamConnection> conn;  // handlers hold it too, so it outlives their operations
    std::string key;                           // scheme://host:port
    bool reused = false;
    bool reusable = false;
  };
  // time_point::max() = none.
  struct Deadlines {
    Clock::time_point guest = Clock::time_point::max();        // waiting for the guest to send
    Clock::time_point upstream = Clock::time_point::max();     // waiting on upstream
    Clock::time_point guest_write = Clock::time_point::max();  // the guest not reading our response
  };

  // request head and filters
  void read_request_head();
  void on_request_head(RequestHead head);
  void refuse(const Denial& d);
  void respond_on_host(const HttpResponse& response);
  void ensure_upstream();
  void on_upstream(std::unique_ptr<UpstreamConnection> conn, const UpstreamFailure& failure);
  void send_request_head();
  void relay_request_body();
  void request_body_done();

  // response (http_session_response.cpp)
  void read_response_head();
  void on_response_head(ResponseHead head, std::size_t head_size);
  void pass_interim_response(const ResponseHead& head);
  void accept_upgrade(const ResponseHead& head);
  void relay_response_body(const ResponseHead& head);
  void response_body_done();
  void exchange_failed(int status, const std::string& rule, const std::string& reason);
  void maybe_finish_exchange();
  // Writes guest_out_ to the guest, then runs `next` (the connection closes on failure).
  void write_guest(std::function<void()> next);

  // lifetime
  bool exchange_current(const std::shared_ptr<UpstreamConnection>& conn) const;
  void write_guest_and_close(std::string bytes);
  void linger(std::shared_ptr<std::size_t> drained);
  void close_all();
  void tick();
  void log_event(const std::string& decision, const std::string& rule, const std::string& reason, int status);

  std::shared_ptr<EgressContext> ctx_;
  GuestSlot slot_;
  FlowFacts flow_;
  // The guest's side of the connection.
  struct Guest {
    explicit Guest(std::unique_ptr<ByteStream> s) : stream(std::move(s)) {}
    std::unique_ptr<ByteStream> stream;
    FlatBuffer in{kGuestBuffer};
    HttpRequestParser parser;
    bool reading = false;  // a read is pending (only one at a time, TLS needs that)
    std::string out;       // a head (or whole response) being written to it
  } guest_;
  Phase phase_ = Phase::RequestHead;

  Exchange exchange_;
  Progress progress_;
  // What the allowed exchanges so far relied on: their host (one per
  // connection: Host must match the SNI or dialled name) and secrets.
  struct Granted {
    std::string host;
    std::vector<std::string> secrets;
  } granted_;
  // The exchange as the egress log names it.
  struct LogTarget {
    std::string host, path;
  } log_target_;
  std::string upstream_head_;  // serialized request head, kept for one retry

  Upstream upstream_;
  FlatBuffer upstream_in_;
  HttpResponseParser response_parser_;

  BodyRelay request_body_;
  BodyRelay response_body_;
  WebSocketTunnel tunnel_;

  boost::asio::steady_timer ticker_;
  Deadlines deadlines_;
};

}  // namespace gondolin::egress
