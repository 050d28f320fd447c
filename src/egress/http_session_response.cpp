// The response side of HttpSession: upstream response head, hooks, the body
// streamed to the guest (re-framed by the host), and WebSocket tunnels.
#include "egress/http_serialize.h"
#include "egress/http_session.h"
#include "util/logging.h"

namespace gondolin::egress {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

bool is_eof(const boost::system::error_code& ec) {
  return ec == boost::asio::error::eof || ec == boost::asio::ssl::error::stream_truncated ||
         ec == boost::asio::error::connection_reset;
}

// The end-to-end headers of a response, for hooks and the guest.
HttpHeaders end_to_end_headers(const ResponseHead& head) {
  HttpHeaders out;
  for (const auto& h : head.headers.list()) {
    if (is_hop_by_hop_header(h.name)) continue;
    bool named = false;
    for (const auto& tok : head.connection_tokens)
      if (iequals(h.name, tok)) named = true;
    if (!named) out.list().push_back(h);
  }
  return out;
}

}  // namespace

void HttpSession::read_response_head() {
  auto r = response_parser_.parse(upstream_in_.readable());
  if (r.state == ParseState::Done) {
    std::size_t size = r.head_size;
    on_response_head(std::move(r.head), size);
    return;
  }
  if (r.state == ParseState::Error) {
    exchange_failed(502, "upstream-protocol", "upstream " + request_.host + " sent an invalid response: " + r.error.reason);
    return;
  }
  if (upstream_in_.full()) {
    exchange_failed(502, "upstream-protocol", "upstream " + request_.host + " sent a response head that is too large");
    return;
  }
  auto conn = upstream_;
  conn->stream->read_some(upstream_in_.prepare(), [self = shared_from_this(), conn](const boost::system::error_code& ec,
                                                                                     std::size_t n) {
    if (self->phase_ == Phase::Closing || conn != self->upstream_) return;
    if (ec) {
      // A reused keep-alive connection the server had already closed: one
      // fresh try for requests without a body (nothing was consumed).
      if (is_eof(ec) && self->upstream_in_.empty() && self->upstream_reused_ && !self->retried_ &&
          self->head_.framing == BodyFraming::None && !self->response_started_) {
        self->retried_ = true;
        self->upstream_->stream->close();
        self->upstream_.reset();
        self->ensure_upstream();
        return;
      }
      self->exchange_failed(502, "upstream-closed", "upstream " + self->request_.host +
                                                        " closed the connection without a response (" + ec.message() + ")");
      return;
    }
    self->upstream_deadline_ = Clock::now() + self->ctx_->options.upstream_response_timeout;
    self->upstream_in_.commit(n);
    self->read_response_head();
  });
}

void HttpSession::on_response_head(ResponseHead head, std::size_t head_size) {
  upstream_in_.consume(head_size);
  response_parser_.reset();
  auto conn = upstream_;

  if (head.status == 101) {
    if (!head_.websocket_upgrade) {
      exchange_failed(502, "upstream-protocol", "upstream switched protocols without being asked to");
      return;
    }
    HttpResponse r{101, head.reason, end_to_end_headers(head), {}};
    std::string extra = "Connection: Upgrade\r\nUpgrade: " + std::string(head.headers.get("upgrade").value_or("websocket")) + "\r\n";
    guest_out_ = serialize_response_head(r, {}, false, true, extra);
    response_started_ = true;
    guest_->write({boost::asio::buffer(guest_out_)}, [self = shared_from_this(), conn](const boost::system::error_code& ec, std::size_t) {
      if (self->phase_ == Phase::Closing || conn != self->upstream_) return;
      if (ec) {
        self->close_all();
        return;
      }
      self->start_tunnel();
    });
    return;
  }

  if (head.status < 200) {  // 100 Continue, 103 Early Hints: pass on, then the real one
    if (head_.minor_version == 0) {
      read_response_head();
      return;
    }
    HttpResponse r{head.status, head.reason, end_to_end_headers(head), {}};
    guest_out_ = serialize_response_head(r, {}, false, true);
    guest_->write({boost::asio::buffer(guest_out_)}, [self = shared_from_this(), conn](const boost::system::error_code& ec, std::size_t) {
      if (self->phase_ == Phase::Closing || conn != self->upstream_) return;
      if (ec) {
        self->close_all();
        return;
      }
      self->read_response_head();
    });
    return;
  }

  HttpResponse response{head.status, head.reason, end_to_end_headers(head), {}};
  if (ctx_->hooks && ctx_->hooks->on_response) {
    try {
      ctx_->hooks->on_response(request_, response);
    } catch (const std::exception& e) {
      log().warn("egress: on_response hook threw: {}", e.what());
      exchange_failed(502, "hook-error", "the response hook failed");
      return;
    }
  }
  response_started_ = true;
  response_framing_ = response_body_framing(head, head_.method);
  response_remaining_ = head.content_length;
  upstream_reusable_ = head.keep_alive && response_framing_ != BodyFraming::UntilClose;

  // The guest's framing is ours: lengths stay lengths, anything else becomes
  // chunked for HTTP/1.1 guests and close-delimited for HTTP/1.0 ones.
  OutFraming out;
  bool raw = false;
  std::string extra;
  response_chunked_out_ = false;
  switch (response_framing_) {
    case BodyFraming::None:
      raw = true;
      if (iequals(head_.method, "HEAD") && head.framing == BodyFraming::ContentLength)
        extra = "Content-Length: " + std::to_string(head.content_length) + "\r\n";
      else if (head.status != 204 && head.status != 304)
        extra = "Content-Length: 0\r\n";
      break;
    case BodyFraming::ContentLength:
      out = {BodyFraming::ContentLength, head.content_length};
      break;
    case BodyFraming::Chunked:
    case BodyFraming::UntilClose:
      if (head_.minor_version == 1) {
        out = {BodyFraming::Chunked, 0};
        response_chunked_out_ = true;
      } else {
        raw = true;
        close_after_ = true;
      }
      break;
  }
  guest_out_ = serialize_response_head(response, out, close_after_, raw, extra);
  guest_->write({boost::asio::buffer(guest_out_)}, [self = shared_from_this(), conn](const boost::system::error_code& ec, std::size_t) {
    if (self->phase_ == Phase::Closing || conn != self->upstream_) return;
    if (ec) {
      self->close_all();
      return;
    }
    self->pump_response_body();
  });
}

void HttpSession::pump_response_body() {
  if (response_framing_ == BodyFraming::None ||
      (response_framing_ == BodyFraming::ContentLength && response_remaining_ == 0)) {
    response_body_done();
    return;
  }
  std::string_view data = upstream_in_.readable();
  if (data.empty()) {
    read_upstream_for_body();
    return;
  }
  switch (response_framing_) {
    case BodyFraming::ContentLength: {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(response_remaining_, data.size()));
      write_response_chunk(data.substr(0, n), n);
      return;
    }
    case BodyFraming::UntilClose:
      write_response_chunk(data, data.size());
      return;
    case BodyFraming::Chunked: {
      ChunkStep step = response_chunks_.step(data);
      switch (step.kind) {
        case ChunkStep::Error:
          exchange_failed(502, "upstream-protocol", "upstream " + request_.host + " sent an invalid chunked body: " +
                                                        response_chunks_.error());
          return;
        case ChunkStep::NeedMore:
          upstream_in_.consume(step.consumed);
          read_upstream_for_body();
          return;
        case ChunkStep::Data:
          write_response_chunk(step.data, step.consumed);
          return;
        case ChunkStep::Done:
          upstream_in_.consume(step.consumed);
          write_response_chunk({}, 0);  // the terminator
          return;
      }
      return;
    }
    case BodyFraming::None:
      return;
  }
}

void HttpSession::read_upstream_for_body() {
  upstream_deadline_ = Clock::now() + ctx_->options.upstream_response_timeout;
  auto conn = upstream_;
  conn->stream->read_some(upstream_in_.prepare(), [self = shared_from_this(), conn](const boost::system::error_code& ec,
                                                                                     std::size_t n) {
    if (self->phase_ == Phase::Closing || conn != self->upstream_) return;
    if (ec) {
      if (is_eof(ec) && self->response_framing_ == BodyFraming::UntilClose) {
        self->upstream_reusable_ = false;
        self->write_response_chunk({}, 0);  // the body ended with the connection
        return;
      }
      self->exchange_failed(502, "upstream-closed", "upstream " + self->request_.host + " closed the connection mid-response");
      return;
    }
    self->upstream_in_.commit(n);
    self->pump_response_body();
  });
}

// Writes body bytes to the guest (empty `data`: the end of the body), then
// consumes `consume` bytes of upstream input and continues.
void HttpSession::write_response_chunk(std::string_view data, std::size_t consume) {
  const bool last = data.empty();
  std::vector<boost::asio::const_buffer> bufs;
  if (response_chunked_out_) {
    if (last) {
      bufs.push_back(boost::asio::buffer(kLastChunk.data(), kLastChunk.size()));
    } else {
      response_chunk_line_ = chunk_size_line(data.size());
      bufs.push_back(boost::asio::buffer(response_chunk_line_));
      bufs.push_back(boost::asio::buffer(data.data(), data.size()));
      bufs.push_back(boost::asio::buffer(kCrlf.data(), kCrlf.size()));
    }
  } else if (!last) {
    bufs.push_back(boost::asio::buffer(data.data(), data.size()));
  }
  if (bufs.empty()) {
    response_body_done();
    return;
  }
  auto conn = upstream_;
  // While the guest drains our write we wait on it, not on upstream.
  guest_write_deadline_ = Clock::now() + ctx_->options.guest_idle_timeout;
  if (request_done_) upstream_deadline_ = Clock::time_point::max();
  guest_->write(std::move(bufs), [self = shared_from_this(), conn, consume, last, n = data.size()](
                                     const boost::system::error_code& ec, std::size_t) {
    self->guest_write_deadline_ = Clock::time_point::max();
    if (self->phase_ == Phase::Closing || conn != self->upstream_) return;
    if (ec) {
      self->close_all();  // the guest stopped reading
      return;
    }
    self->upstream_in_.consume(consume);
    if (self->response_framing_ == BodyFraming::ContentLength) self->response_remaining_ -= n;
    if (last) self->response_body_done();
    else self->pump_response_body();
  });
}

void HttpSession::response_body_done() {
  response_done_ = true;
  upstream_deadline_ = Clock::time_point::max();
  if (response_framing_ == BodyFraming::UntilClose) upstream_reusable_ = false;
  maybe_finish_exchange();
}

void HttpSession::exchange_failed(int status, const std::string& rule, const std::string& reason) {
  if (phase_ == Phase::Closing) return;
  log_event("error", rule, reason, response_started_ ? 0 : status);
  if (response_started_) {
    close_all();  // mid-body: all we can do is cut the connection
    return;
  }
  write_guest_and_close(make_text_response(status, "gondolin: " + reason, true));
}

// ---- WebSocket: after the 101, bytes flow both ways untouched ----

void HttpSession::start_tunnel() {
  phase_ = Phase::Tunnel;
  guest_deadline_ = upstream_deadline_ = Clock::time_point::max();
  upstream_reusable_ = false;
  tunnel_pump(true);
  tunnel_pump(false);
}

void HttpSession::tunnel_pump(bool guest_to_upstream) {
  if (phase_ != Phase::Tunnel) return;
  FlatBuffer& in = guest_to_upstream ? guest_in_ : upstream_in_;
  ByteStream& from = guest_to_upstream ? *guest_ : *upstream_->stream;
  ByteStream& to = guest_to_upstream ? *upstream_->stream : *guest_;
  auto conn = upstream_;
  if (!in.empty()) {
    std::string_view data = in.readable();
    to.write({boost::asio::buffer(data.data(), data.size())},
             [self = shared_from_this(), conn, guest_to_upstream, n = data.size()](const boost::system::error_code& ec, std::size_t) {
               if (self->phase_ != Phase::Tunnel) return;
               if (ec) {
                 self->close_all();
                 return;
               }
               (guest_to_upstream ? self->guest_in_ : self->upstream_in_).consume(n);
               self->tunnel_pump(guest_to_upstream);
             });
    return;
  }
  from.read_some(in.prepare(), [self = shared_from_this(), conn, guest_to_upstream](const boost::system::error_code& ec,
                                                                                     std::size_t n) {
    if (self->phase_ != Phase::Tunnel) return;
    if (ec) {
      self->close_all();
      return;
    }
    (guest_to_upstream ? self->guest_in_ : self->upstream_in_).commit(n);
    self->tunnel_pump(guest_to_upstream);
  });
}

}  // namespace gondolin::egress
