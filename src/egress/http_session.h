// One guest HTTP/1.1 connection (plain, or decrypted HTTPS) proxied request by
// request: parse strictly, apply hooks and policy, re-send upstream on the
// host's own connection, stream bodies both ways through fixed buffers, and
// keep the guest connection alive (pipelined requests wait their turn in the
// bounded input buffer). WebSocket upgrades become a two-way pipe.
#pragma once

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "egress/byte_stream.h"
#include "egress/chunked_decoder.h"
#include "egress/egress_context.h"
#include "egress/flat_buffer.h"
#include "egress/http_parser.h"
#include "egress/upstream_connector.h"

namespace gondolin::egress {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  static constexpr std::size_t kGuestBuffer = 64 * 1024 + 1024;  // a maximal head fits
  static constexpr std::size_t kUpstreamBuffer = 64 * 1024 + 1024;

  // `slot` counts this connection against the VM's guest-connection cap for
  // the session's whole life (empty in tests that drive a session directly).
  HttpSession(std::shared_ptr<EgressContext> ctx, FlowFacts flow, std::unique_ptr<ByteStream> guest,
              std::string_view prefix, GuestSlot slot = {});
  ~HttpSession();
  void start();

 private:
  using Clock = std::chrono::steady_clock;
  enum class Phase { RequestHead, Exchange, Tunnel, Closing };

  // request head and policy
  void read_request_head();
  void on_request_head(RequestHead head);
  void refuse(const Denial& d);
  void respond_from_hook(const HttpResponse& response);
  void ensure_upstream();
  void on_upstream(std::unique_ptr<UpstreamConnection> conn, const UpstreamFailure& failure);
  void send_request_head();

  // request body: guest -> upstream
  void pump_request_body();
  void read_guest_for_body();
  void request_body_done();

  // response: upstream -> guest
  void read_response_head();
  void on_response_head(ResponseHead head, std::size_t head_size);
  void pump_response_body();
  void read_upstream_for_body();
  void write_response_chunk(std::string_view data, std::size_t consume);
  void response_body_done();
  void exchange_failed(int status, const std::string& rule, const std::string& reason);
  void maybe_finish_exchange();

  // websocket
  void start_tunnel();
  void tunnel_pump(bool guest_to_upstream);

  // lifetime
  void write_guest_and_close(std::string bytes);
  void linger(std::shared_ptr<std::size_t> drained);
  void close_all();
  void tick();
  void log_event(const std::string& decision, const std::string& rule, const std::string& reason, int status);

  std::shared_ptr<EgressContext> ctx_;
  GuestSlot slot_;
  FlowFacts flow_;
  std::unique_ptr<ByteStream> guest_;
  FlatBuffer guest_in_;
  HttpRequestParser request_parser_;
  Phase phase_ = Phase::RequestHead;

  // the current exchange
  RequestHead head_;
  HttpRequest request_;        // as forwarded (placeholders substituted)
  std::string log_host_, log_path_;
  std::vector<std::string> secrets_used_;
  std::string rule_;
  std::string upstream_head_;  // serialized request head, kept for one retry
  bool request_done_ = false;
  bool response_done_ = false;
  bool response_started_ = false;  // any response byte went to the guest
  bool close_after_ = false;
  bool retried_ = false;
  bool allow_logged_ = false;
  bool guest_reading_ = false;  // a guest read is pending (only one at a time, TLS needs that)
  std::uint64_t request_remaining_ = 0;
  ChunkedDecoder request_chunks_;
  std::string request_chunk_line_;

  // upstream
  std::shared_ptr<UpstreamConnection> upstream_;  // handlers hold it too, so it outlives their operations
  std::string upstream_key_;
  bool upstream_reused_ = false;
  bool upstream_reusable_ = false;
  FlatBuffer upstream_in_;
  HttpResponseParser response_parser_;
  BodyFraming response_framing_ = BodyFraming::None;
  bool response_chunked_out_ = false;  // re-encoding the body as chunked for the guest
  std::uint64_t response_remaining_ = 0;
  ChunkedDecoder response_chunks_;
  std::string response_chunk_line_;
  std::string guest_out_;

  // timeouts: a one-second tick checks deadlines (time_point::max() = none)
  boost::asio::steady_timer ticker_;
  Clock::time_point guest_deadline_ = Clock::time_point::max();
  Clock::time_point upstream_deadline_ = Clock::time_point::max();  // waiting on upstream
  Clock::time_point guest_write_deadline_ = Clock::time_point::max();  // the guest not reading our response
};

}  // namespace gondolin::egress
