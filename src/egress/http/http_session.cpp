// The request side of HttpSession (head, filters, upstream connection,
// request body) and the session's lifetime. The response side is in
// http_session_response.cpp.
#include "egress/http/http_session.h"

#include "egress/http/http_serialize.h"
#include "util/append_once.h"
#include "util/logging.h"

namespace gondolin::egress {
namespace {

constexpr std::chrono::seconds kTick{1};
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerBytes = 1 << 20;

std::string path_of(std::string_view target) {
  std::string_view p = target.substr(0, target.find('?'));
  return std::string(p.substr(0, 2048));
}

}  // namespace

HttpSession::HttpSession(std::shared_ptr<EgressContext> ctx, FlowFacts flow, std::unique_ptr<ByteStream> guest,
                         std::string_view prefix, GuestSlot slot)
    : ctx_(std::move(ctx)),
      slot_(std::move(slot)),
      flow_(std::move(flow)),
      guest_(std::move(guest)),
      upstream_in_(kUpstreamBuffer),
      ticker_(ctx_->io) {
  guest_.in.append(prefix.substr(0, kGuestBuffer));
  exchange_.flow = &flow_;
}

HttpSession::~HttpSession() = default;

void HttpSession::start() {
  ctx_->bind_flow(weak_from_this());
  tick();
  read_request_head();
}

bool HttpSession::recheck(const EgressPolicy& policy) {
  if (phase_ == Phase::Closing || granted_.host.empty()) return false;
  bool secret_gone = false, secret_route = false;
  for (const auto& name : granted_.secrets) {
    bool allows = policy.secrets().allows(name, granted_.host);
    secret_gone = secret_gone || !allows;
    secret_route = secret_route || allows;
  }
  std::string rule;
  const bool listed = !policy.check_allowlist(granted_.host, rule);
  if (!secret_gone && !policy.denied_host(granted_.host) && (listed || secret_route)) return false;
  ctx_->log.record(
      EgressEvent::for_flow(flow_.flow_id, flow_.tls ? "https" : "http", granted_.host, flow_.port, "policy-change")
          .decided(
              "deny",
              secret_gone ? "a secret this connection used was removed or narrowed" : "the host is no longer allowed",
              "close"));
  close_all();
  return true;
}

void HttpSession::tick() {
  ticker_.expires_after(kTick);
  ticker_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->phase_ == Phase::Closing) return;
    auto now = Clock::now();
    if (now >= self->deadlines_.upstream) {
      self->deadlines_.upstream = Clock::time_point::max();
      auto secs =
          std::chrono::duration_cast<std::chrono::seconds>(self->ctx_->options.upstream_response_timeout).count();
      self->exchange_failed(
          504, "timeout",
          "upstream " + self->exchange_.request.host + " sent nothing for " + std::to_string(secs) + " s");
    } else if (now >= self->deadlines_.guest || now >= self->deadlines_.guest_write) {
      self->close_all();  // an idle or stalled guest connection
    }
    if (self->phase_ != Phase::Closing) self->tick();
  });
}

void HttpSession::log_event(const std::string& decision, const std::string& rule, const std::string& reason,
                            int status) {
  EgressEvent e = EgressEvent::for_flow(flow_.flow_id, flow_.tls ? "https" : "http", log_target_.host, flow_.port, rule)
                      .decided(decision, reason);
  e.method = exchange_.head.method;
  e.path = log_target_.path;
  e.secrets = exchange_.secrets;
  e.status = status;
  if (upstream_.conn && decision != "deny") e.upstream = upstream_.conn->peer;
  ctx_->log.record(e);
}

// A completion belongs to the current exchange if the session is not
// closing and still uses the upstream connection the operation was on.
bool HttpSession::exchange_current(const std::shared_ptr<UpstreamConnection>& conn) const {
  return phase_ != Phase::Closing && conn == upstream_.conn;
}

// ---- request head and filters ----

void HttpSession::read_request_head() {
  phase_ = Phase::RequestHead;
  if (guest_.in.empty()) {
    // Between requests: an idle keep-alive flow holds no buffers.
    guest_.in.release();
    if (upstream_in_.empty()) upstream_in_.release();
  }
  auto r = guest_.parser.parse(guest_.in.readable());
  if (r.state == ParseState::Done) {
    deadlines_.guest = Clock::time_point::max();
    guest_.in.consume(r.head_size);
    guest_.parser.reset();
    on_request_head(std::move(r.head));
    return;
  }
  if (r.state == ParseState::Error) {
    exchange_.head = RequestHead{};
    exchange_.secrets.clear();
    log_target_.host = flow_.sni.value_or(flow_.dns_name.value_or(""));
    log_target_.path.clear();
    refuse(Denial{r.error.status, "bad-request", r.error.reason});
    return;
  }
  deadlines_.guest = Clock::now() + ctx_->options.guest_idle_timeout;
  guest_.reading = true;
  guest_.stream->read_some(guest_.in.prepare(),
                           [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                             self->guest_.reading = false;
                             if (self->phase_ == Phase::Closing) return;
                             if (ec) {
                               self->close_all();  // the guest closed its connection between requests
                               return;
                             }
                             self->guest_.in.commit(n);
                             self->read_request_head();
                           });
}

void HttpSession::on_request_head(RequestHead head) {
  phase_ = Phase::Exchange;
  exchange_ = Exchange{&flow_, std::move(head), {}, false, {}, {}, {}, nullptr};
  progress_ = Progress{};
  progress_.close_after = !exchange_.head.keep_alive || exchange_.head.minor_version == 0;
  response_parser_.reset();
  log_target_.host =
      flow_.sni.value_or(flow_.dns_name.value_or(std::string(exchange_.head.headers.get("host").value_or(""))));
  log_target_.path = path_of(exchange_.head.target);

  FilterVerdict verdict = ctx_->filters->on_request(exchange_);
  if (exchange_.interpreted) {
    log_target_.host = exchange_.request.host;
    log_target_.path = path_of(exchange_.request.target);
  }
  if (auto* d = std::get_if<Denial>(&verdict)) return refuse(*d);
  if (auto* r = std::get_if<HttpResponse>(&verdict)) return respond_on_host(*r);
  granted_.host = exchange_.request.host;
  for (const auto& name : exchange_.secrets) append_once(granted_.secrets, name);
  ensure_upstream();
}

void HttpSession::refuse(const Denial& d) {
  log_event("deny", d.rule, d.reason, d.status);
  write_guest_and_close(make_text_response(d.status, "gondolin: " + d.reason, true));
}

void HttpSession::respond_on_host(const HttpResponse& response) {
  log_event("respond", "hook", "", response.status);
  const RequestHead& head = exchange_.head;
  // A request body we did not read would be taken for the next request.
  if (head.framing != BodyFraming::None) progress_.close_after = true;
  bool head_only = iequals(head.method, "HEAD") || response.status == 204 || response.status == 304;
  guest_.out = serialize_response_head(response, {BodyFraming::ContentLength, response.body.size()},
                                       progress_.close_after, response.status == 204 || response.status == 304);
  if (!head_only) guest_.out += response.body;
  progress_.response_started = true;
  write_guest([this] {
    progress_.request_done = exchange_.head.framing == BodyFraming::None;
    progress_.response_done = true;
    maybe_finish_exchange();
  });
}

void HttpSession::ensure_upstream() {
  const HttpRequest& request = exchange_.request;
  std::string key = (flow_.tls ? "https://" : "http://") + request.host + ":" + std::to_string(request.port);
  if (upstream_.conn && upstream_.reusable && key == upstream_.key) {
    upstream_.reused = true;
    upstream_.reusable = false;
    send_request_head();
    return;
  }
  if (upstream_.conn) upstream_.conn->stream->close();
  upstream_ = Upstream{nullptr, key, false, false};
  upstream_in_.clear();
  connect_upstream(ctx_, UpstreamTarget{request.host, request.port, flow_.tls},
                   [self = shared_from_this()](std::unique_ptr<UpstreamConnection> c, const UpstreamFailure& f) {
                     self->on_upstream(std::move(c), f);
                   });
}

void HttpSession::on_upstream(std::unique_ptr<UpstreamConnection> conn, const UpstreamFailure& failure) {
  if (phase_ == Phase::Closing) return;
  if (!conn) {
    if (failure.status == 403)
      refuse(Denial{403, failure.rule, failure.reason});
    else
      exchange_failed(failure.status, failure.rule, failure.reason);
    return;
  }
  upstream_.conn = std::shared_ptr<UpstreamConnection>(std::move(conn));
  send_request_head();
}

void HttpSession::send_request_head() {
  const RequestHead& head = exchange_.head;
  std::string upgrade;
  if (head.websocket_upgrade) upgrade = std::string(head.headers.get("upgrade").value_or("websocket"));
  upstream_head_ = serialize_request_head(exchange_.request, OutFraming{head.framing, head.content_length},
                                          head.websocket_upgrade, upgrade);
  if (!progress_.allow_logged) {
    progress_.allow_logged = true;
    log_event("allow", exchange_.rule, "", 0);
  }
  deadlines_.upstream = Clock::now() + ctx_->options.upstream_response_timeout;
  auto conn = upstream_.conn;
  conn->stream->write({boost::asio::buffer(upstream_head_)},
                      [self = shared_from_this(), conn](const boost::system::error_code& ec, std::size_t) {
                        if (!self->exchange_current(conn)) return;
                        if (ec) {
                          // The response side sees the same failure and reports or retries it.
                          self->progress_.close_after = true;
                          return;
                        }
                        self->relay_request_body();
                      });
  read_response_head();
}

// Guest -> upstream, through guest_.in only; framing kept (a length stays a
// length, chunks are re-chunked as they come).
void HttpSession::relay_request_body() {
  if (progress_.request_done) return;
  const RequestHead& head = exchange_.head;
  auto conn = upstream_.conn;
  BodyRelayEvents events;
  events.current = [this, conn] { return exchange_current(conn); };
  events.wait_source = [this] {
    // Waiting on the guest's body, not on upstream: a slow uploader is not a silent server.
    deadlines_.guest = Clock::now() + ctx_->options.guest_idle_timeout;
    if (!progress_.response_started) deadlines_.upstream = Clock::time_point::max();
    guest_.reading = true;
  };
  events.source_read = [this] {
    guest_.reading = false;
    deadlines_.guest = Clock::time_point::max();
  };
  events.wait_sink = [] {};
  // Upstream took the bytes: it is alive; give it the full time again.
  events.sink_wrote = [this] { deadlines_.upstream = Clock::now() + ctx_->options.upstream_response_timeout; };
  events.source_failed = [this](const std::string&) { close_all(); };  // the guest left mid-body
  // Upstream stopped reading; its response decides what the guest sees.
  events.sink_failed = [this] { progress_.close_after = true; };
  events.bad_framing = [this](const std::string& why) {
    progress_.close_after = true;
    exchange_failed(400, "bad-request", "invalid chunked request body: " + why);
  };
  events.done = [this] { request_body_done(); };
  request_body_.start(weak_from_this(), conn, guest_.in, *guest_.stream, *conn->stream,
                      BodyFramingPlan{head.framing, head.content_length, head.framing == BodyFraming::Chunked, nullptr},
                      std::move(events));
}

void HttpSession::request_body_done() {
  progress_.request_done = true;
  deadlines_.guest = Clock::time_point::max();
  if (!progress_.response_done) deadlines_.upstream = Clock::now() + ctx_->options.upstream_response_timeout;
  maybe_finish_exchange();
}

void HttpSession::maybe_finish_exchange() {
  if (!progress_.response_done || phase_ != Phase::Exchange) return;
  if (!progress_.request_done) {
    // Upstream answered before taking the whole body: the rest of the guest's
    // bytes cannot be told apart from a next request, so this connection ends.
    progress_.close_after = true;
    upstream_.reusable = false;
  }
  request_body_.cancel();
  response_body_.cancel();
  if (upstream_.conn && (!upstream_.reusable || !upstream_in_.empty())) {
    upstream_.conn->stream->close();
    upstream_.conn.reset();
    upstream_.reusable = false;
  }
  if (progress_.close_after) {
    write_guest_and_close("");
    return;
  }
  read_request_head();
}

// ---- lifetime ----

void HttpSession::write_guest_and_close(std::string bytes) {
  if (phase_ == Phase::Closing) return;
  phase_ = Phase::Closing;
  ticker_.cancel();
  if (upstream_.conn) {
    upstream_.conn->stream->close();
    upstream_.conn.reset();
  }
  // With a read still pending (an unfinished request body) there is nothing
  // to wait for: close as soon as the response is out.
  auto finish = [self = shared_from_this()] {
    if (self->guest_.reading) {
      self->guest_.stream->close();
      return;
    }
    self->guest_.stream->shutdown([self] { self->linger(std::make_shared<std::size_t>(0)); });
  };
  if (bytes.empty()) {
    finish();
    return;
  }
  guest_.out = std::move(bytes);
  guest_.stream->write({boost::asio::buffer(guest_.out)},
                       [self = shared_from_this(), finish](const boost::system::error_code& ec, std::size_t) {
                         if (ec) {
                           self->guest_.stream->close();
                           return;
                         }
                         finish();
                       });
}

// After our last response, read and drop what the guest still sends for a
// moment: closing with unread input would reset the connection and could
// destroy the response before the guest reads it.
void HttpSession::linger(std::shared_ptr<std::size_t> drained) {
  if (*drained == 0) {
    ticker_.expires_after(kLingerTime);
    ticker_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->guest_.stream->close();
    });
  }
  guest_.stream->read_some(upstream_in_.prepare(),
                           [self = shared_from_this(), drained](const boost::system::error_code& ec, std::size_t n) {
                             self->upstream_in_.clear();
                             *drained += n;
                             if (ec || *drained > kLingerBytes) {
                               self->ticker_.cancel();
                               self->guest_.stream->close();
                               return;
                             }
                             self->linger(drained);
                           });
}

void HttpSession::close_all() {
  phase_ = Phase::Closing;
  ticker_.cancel();
  guest_.stream->close();
  if (upstream_.conn) {
    upstream_.conn->stream->close();
    upstream_.conn.reset();
  }
}

}  // namespace gondolin::egress
