// The response side of HttpSession: upstream response head, the filters'
// on_response, the head re-framed by the host, the body relayed to the
// guest, and the switch to a WebSocket tunnel.
#include "egress/http/http_serialize.h"
#include "egress/http/http_session.h"
#include "util/logging.h"

namespace gondolin::egress {
namespace {

// The end-to-end headers of a response, for filters and the guest.
HttpHeaders end_to_end_headers(const ResponseHead& head, const Exchange& x) {
  HttpHeaders out;
  for (const auto& h : head.headers.list()) {
    if (is_hop_by_hop_header(h.name)) continue;
    bool named = false;
    for (const auto& tok : head.connection_tokens)
      if (iequals(h.name, tok)) named = true;
    if (!named) out.list().push_back(h);
  }
  // Interim and 101 heads skip the filters but not the reflection guard.
  if (x.guard && head.status < 200) scrub_headers(*x.guard, out);
  return out;
}

}  // namespace

void HttpSession::read_response_head() {
  const std::string& host = exchange_.request.host;
  auto r = response_parser_.parse(upstream_in_.readable());
  if (r.state == ParseState::Done) {
    std::size_t size = r.head_size;
    on_response_head(std::move(r.head), size);
    return;
  }
  if (r.state == ParseState::Error)
    return exchange_failed(502, "upstream-protocol",
                           "upstream " + host + " sent an invalid response: " + r.error.reason);
  if (upstream_in_.full())
    return exchange_failed(502, "upstream-protocol", "upstream " + host + " sent a response head that is too large");
  auto conn = upstream_.conn;
  conn->stream->read_some(
      upstream_in_.prepare(), [self = shared_from_this(), conn](const boost::system::error_code& ec, std::size_t n) {
        if (!self->exchange_current(conn)) return;
        if (ec) {
          // A reused keep-alive connection the server had already closed: one
          // fresh try for requests without a body (nothing was consumed).
          Progress& p = self->progress_;
          if (is_peer_close(ec) && self->upstream_in_.empty() && self->upstream_.reused && !p.retried &&
              self->exchange_.head.framing == BodyFraming::None && !p.response_started) {
            p.retried = true;
            self->upstream_.conn->stream->close();
            self->upstream_.conn.reset();
            self->ensure_upstream();
            return;
          }
          self->exchange_failed(502, "upstream-closed",
                                "upstream " + self->exchange_.request.host +
                                    " closed the connection without a response (" + ec.message() + ")");
          return;
        }
        self->deadlines_.upstream = Clock::now() + self->ctx_->options.upstream_response_timeout;
        self->upstream_in_.commit(n);
        self->read_response_head();
      });
}

void HttpSession::write_guest(std::function<void()> next) {
  auto conn = upstream_.conn;
  guest_.stream->write({boost::asio::buffer(guest_.out)}, [self = shared_from_this(), conn, next = std::move(next)](
                                                              const boost::system::error_code& ec, std::size_t) {
    if (!self->exchange_current(conn)) return;
    if (ec) return self->close_all();
    next();
  });
}

void HttpSession::on_response_head(ResponseHead head, std::size_t head_size) {
  upstream_in_.consume(head_size);
  response_parser_.reset();
  if (head.status == 101) return accept_upgrade(head);
  if (head.status < 200) return pass_interim_response(head);
  relay_response_body(head);
}

void HttpSession::accept_upgrade(const ResponseHead& head) {
  if (!exchange_.head.websocket_upgrade)
    return exchange_failed(502, "upstream-protocol", "upstream switched protocols without being asked to");
  HttpResponse r{101, head.reason, end_to_end_headers(head, exchange_), {}};
  std::string extra =
      "Connection: Upgrade\r\nUpgrade: " + std::string(head.headers.get("upgrade").value_or("websocket")) + "\r\n";
  guest_.out = serialize_response_head(r, {}, false, true, extra);
  progress_.response_started = true;
  write_guest([this] {
    // After the 101, bytes flow both ways untouched.
    phase_ = Phase::Tunnel;
    deadlines_.guest = deadlines_.upstream = Clock::time_point::max();
    upstream_.reusable = false;
    tunnel_.start(
        weak_from_this(), upstream_.conn, {guest_.stream.get(), &guest_.in},
        {upstream_.conn->stream.get(), &upstream_in_}, [this] { return phase_ == Phase::Tunnel; },
        [this] { close_all(); });
  });
}

// 100 Continue, 103 Early Hints: passed on (not to HTTP/1.0 guests), then the real one.
void HttpSession::pass_interim_response(const ResponseHead& head) {
  if (exchange_.head.minor_version == 0) return read_response_head();
  HttpResponse r{head.status, head.reason, end_to_end_headers(head, exchange_), {}};
  guest_.out = serialize_response_head(r, {}, false, true);
  write_guest([this] { read_response_head(); });
}

void HttpSession::relay_response_body(const ResponseHead& head) {
  HttpResponse response{head.status, head.reason, end_to_end_headers(head, exchange_), {}};
  if (auto d = ctx_->filters->on_response(exchange_, response)) return exchange_failed(d->status, d->rule, d->reason);
  const std::string& method = exchange_.head.method;
  progress_.response_started = true;
  progress_.response_framing = response_body_framing(head, method);
  upstream_.reusable = head.keep_alive && progress_.response_framing != BodyFraming::UntilClose;

  // The guest's framing is ours: lengths stay lengths, anything else becomes
  // chunked for HTTP/1.1 guests and close-delimited for HTTP/1.0 ones.
  OutFraming out;
  bool raw = false;
  std::string extra;
  BodyFramingPlan plan{progress_.response_framing, head.content_length, false, exchange_.guard};
  switch (progress_.response_framing) {
    case BodyFraming::None:
      raw = true;
      if (iequals(method, "HEAD") && head.framing == BodyFraming::ContentLength)
        extra = "Content-Length: " + std::to_string(head.content_length) + "\r\n";
      else if (head.status != 204 && head.status != 304)
        extra = "Content-Length: 0\r\n";
      break;
    case BodyFraming::ContentLength:
      // A scrubbed body may change length: only the guest framing follows.
      if (!exchange_.guard) {
        out = {BodyFraming::ContentLength, head.content_length};
        break;
      }
      [[fallthrough]];
    case BodyFraming::Chunked:
    case BodyFraming::UntilClose:
      if (exchange_.head.minor_version == 1) {
        out = {BodyFraming::Chunked, 0};
        plan.chunked_out = true;
      } else {
        raw = true;
        progress_.close_after = true;
      }
      break;
  }
  guest_.out = serialize_response_head(response, out, progress_.close_after, raw, extra);
  auto conn = upstream_.conn;
  write_guest([this, conn, plan] {
    BodyRelayEvents events;
    events.current = [this, conn] { return exchange_current(conn); };
    events.wait_source = [this] { deadlines_.upstream = Clock::now() + ctx_->options.upstream_response_timeout; };
    events.source_read = [] {};
    events.wait_sink = [this] {
      // While the guest drains our write we wait on it, not on upstream.
      deadlines_.guest_write = Clock::now() + ctx_->options.guest_idle_timeout;
      if (progress_.request_done) deadlines_.upstream = Clock::time_point::max();
    };
    events.sink_wrote = [this] { deadlines_.guest_write = Clock::time_point::max(); };
    events.source_failed = [this](const std::string&) {
      exchange_failed(502, "upstream-closed",
                      "upstream " + exchange_.request.host + " closed the connection mid-response");
    };
    events.sink_failed = [this] { close_all(); };  // the guest stopped reading
    events.bad_framing = [this](const std::string& why) {
      exchange_failed(502, "upstream-protocol",
                      "upstream " + exchange_.request.host + " sent an invalid chunked body: " + why);
    };
    events.done = [this] { response_body_done(); };
    response_body_.start(weak_from_this(), conn, upstream_in_, *conn->stream, *guest_.stream, plan, std::move(events));
  });
}

void HttpSession::response_body_done() {
  progress_.response_done = true;
  deadlines_.upstream = Clock::time_point::max();
  if (progress_.response_framing == BodyFraming::UntilClose) upstream_.reusable = false;
  maybe_finish_exchange();
}

void HttpSession::exchange_failed(int status, const std::string& rule, const std::string& reason) {
  if (phase_ == Phase::Closing) return;
  log_event("error", rule, reason, progress_.response_started ? 0 : status);
  if (progress_.response_started) {
    close_all();  // mid-body: all we can do is cut the connection
    return;
  }
  write_guest_and_close(make_text_response(status, "gondolin: " + reason, true));
}

}  // namespace gondolin::egress
