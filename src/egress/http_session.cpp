// The request side of HttpSession: head, policy, upstream connection, request
// body, and the session's lifetime. The response side is in
// http_session_response.cpp.
#include "egress/http_session.h"

#include "egress/http_serialize.h"
#include "util/logging.h"

namespace gondolin::egress {
namespace {

constexpr std::chrono::seconds kTick{1};
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerBytes = 1 << 20;
constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

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
      guest_in_(kGuestBuffer),
      upstream_in_(kUpstreamBuffer),
      ticker_(ctx_->io) {
  guest_in_.append(prefix.substr(0, kGuestBuffer));
}

HttpSession::~HttpSession() = default;

void HttpSession::start() {
  tick();
  read_request_head();
}

void HttpSession::tick() {
  ticker_.expires_after(kTick);
  ticker_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->phase_ == Phase::Closing) return;
    auto now = Clock::now();
    if (now >= self->upstream_deadline_) {
      self->upstream_deadline_ = Clock::time_point::max();
      auto secs = std::chrono::duration_cast<std::chrono::seconds>(self->ctx_->options.upstream_response_timeout).count();
      self->exchange_failed(504, "timeout", "upstream " + self->request_.host + " sent nothing for " + std::to_string(secs) + " s");
    } else if (now >= self->guest_deadline_ || now >= self->guest_write_deadline_) {
      self->close_all();  // an idle or stalled guest connection
    }
    if (self->phase_ != Phase::Closing) self->tick();
  });
}

void HttpSession::log_event(const std::string& decision, const std::string& rule, const std::string& reason, int status) {
  EgressEvent e;
  e.flow = flow_.flow_id;
  e.kind = flow_.tls ? "https" : "http";
  e.host = log_host_;
  e.port = flow_.port;
  e.method = head_.method;
  e.path = log_path_;
  e.decision = decision;
  e.rule = rule;
  e.secrets = secrets_used_;
  e.status = status;
  e.reason = reason;
  if (upstream_ && decision != "deny") e.upstream = upstream_->peer;
  ctx_->log.record(e);
}

// ---- request head and policy ----

void HttpSession::read_request_head() {
  phase_ = Phase::RequestHead;
  if (guest_in_.empty()) {
    // Between requests: an idle keep-alive flow holds no buffers.
    guest_in_.release();
    if (upstream_in_.empty()) upstream_in_.release();
  }
  auto r = request_parser_.parse(guest_in_.readable());
  if (r.state == ParseState::Done) {
    guest_deadline_ = Clock::time_point::max();
    guest_in_.consume(r.head_size);
    request_parser_.reset();
    on_request_head(std::move(r.head));
    return;
  }
  if (r.state == ParseState::Error) {
    head_ = RequestHead{};
    log_host_ = flow_.sni.value_or(flow_.dns_name.value_or(""));
    log_path_.clear();
    refuse(Denial{r.error.status, "bad-request", r.error.reason});
    return;
  }
  guest_deadline_ = Clock::now() + ctx_->options.guest_idle_timeout;
  guest_reading_ = true;
  guest_->read_some(guest_in_.prepare(), [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
    self->guest_reading_ = false;
    if (self->phase_ == Phase::Closing) return;
    if (ec) {
      self->close_all();  // the guest closed its connection between requests
      return;
    }
    self->guest_in_.commit(n);
    self->read_request_head();
  });
}

void HttpSession::on_request_head(RequestHead head) {
  phase_ = Phase::Exchange;
  head_ = std::move(head);
  request_done_ = response_done_ = response_started_ = retried_ = allow_logged_ = false;
  secrets_used_.clear();
  rule_.clear();
  request_chunks_ = ChunkedDecoder{};
  response_chunks_ = ChunkedDecoder{};
  response_parser_.reset();
  close_after_ = !head_.keep_alive || head_.minor_version == 0;
  log_host_ = flow_.sni.value_or(flow_.dns_name.value_or(std::string(head_.headers.get("host").value_or(""))));
  log_path_ = path_of(head_.target);

  auto interpreted = ctx_->policy.interpret(head_, flow_);
  if (auto* d = std::get_if<Denial>(&interpreted)) {
    refuse(*d);
    return;
  }
  request_ = std::move(std::get<HttpRequest>(interpreted));
  log_host_ = request_.host;
  log_path_ = path_of(request_.target);

  if (ctx_->hooks && ctx_->hooks->on_request) {
    std::optional<RequestVerdict> verdict;
    try {
      verdict = ctx_->hooks->on_request(request_);
    } catch (const std::exception& e) {
      log().warn("egress: on_request hook threw: {}", e.what());
      refuse(Denial{500, "hook-error", "the request hook failed"});
      return;
    }
    log_host_ = request_.host;
    log_path_ = path_of(request_.target);
    if (verdict->kind() == RequestVerdict::Kind::Deny) {
      refuse(Denial{403, "hook", verdict->reason()});
      return;
    }
    if (verdict->kind() == RequestVerdict::Kind::Respond) {
      respond_from_hook(verdict->response());
      return;
    }
  }

  auto authorized = ctx_->policy.authorize(request_);
  if (auto* d = std::get_if<Denial>(&authorized)) {
    refuse(*d);
    return;
  }
  auto& a = std::get<Authorization>(authorized);
  rule_ = std::move(a.rule);
  secrets_used_ = std::move(a.secrets);
  log_host_ = request_.host;
  ensure_upstream();
}

void HttpSession::refuse(const Denial& d) {
  log_event("deny", d.rule, d.reason, d.status);
  write_guest_and_close(make_text_response(d.status, "gondolin: " + d.reason, true));
}

void HttpSession::respond_from_hook(const HttpResponse& response) {
  log_event("respond", "hook", "", response.status);
  // A request body we did not read would be taken for the next request.
  if (head_.framing != BodyFraming::None) close_after_ = true;
  bool head_only = iequals(head_.method, "HEAD") || response.status == 204 || response.status == 304;
  guest_out_ = serialize_response_head(response, {BodyFraming::ContentLength, response.body.size()}, close_after_,
                                       response.status == 204 || response.status == 304);
  if (!head_only) guest_out_ += response.body;
  response_started_ = true;
  guest_->write({boost::asio::buffer(guest_out_)}, [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
    if (self->phase_ == Phase::Closing) return;
    if (ec) {
      self->close_all();
      return;
    }
    self->request_done_ = self->head_.framing == BodyFraming::None;
    self->response_done_ = true;
    self->maybe_finish_exchange();
  });
}

void HttpSession::ensure_upstream() {
  std::string key = (flow_.tls ? "https://" : "http://") + request_.host + ":" + std::to_string(request_.port);
  if (upstream_ && upstream_reusable_ && key == upstream_key_) {
    upstream_reused_ = true;
    upstream_reusable_ = false;
    send_request_head();
    return;
  }
  if (upstream_) upstream_->stream->close();
  upstream_.reset();
  upstream_in_.clear();
  upstream_reused_ = upstream_reusable_ = false;
  upstream_key_ = key;
  connect_upstream(ctx_, UpstreamTarget{request_.host, request_.port, flow_.tls},
                   [self = shared_from_this()](std::unique_ptr<UpstreamConnection> c, const UpstreamFailure& f) {
                     self->on_upstream(std::move(c), f);
                   });
}

void HttpSession::on_upstream(std::unique_ptr<UpstreamConnection> conn, const UpstreamFailure& failure) {
  if (phase_ == Phase::Closing) return;
  if (!conn) {
    if (failure.status == 403) {
      refuse(Denial{403, failure.rule, failure.reason});
    } else {
      exchange_failed(failure.status, failure.rule, failure.reason);
    }
    return;
  }
  upstream_ = std::shared_ptr<UpstreamConnection>(std::move(conn));
  send_request_head();
}

void HttpSession::send_request_head() {
  OutFraming framing{head_.framing, head_.content_length};
  std::string upgrade;
  if (head_.websocket_upgrade) upgrade = std::string(head_.headers.get("upgrade").value_or("websocket"));
  upstream_head_ = serialize_request_head(request_, framing, head_.websocket_upgrade, upgrade);
  if (!allow_logged_) {
    allow_logged_ = true;
    log_event("allow", rule_, "", 0);
  }
  request_remaining_ = head_.content_length;
  upstream_deadline_ = Clock::now() + ctx_->options.upstream_response_timeout;
  auto conn = upstream_;
  conn->stream->write({boost::asio::buffer(upstream_head_)},
                      [self = shared_from_this(), conn](const boost::system::error_code& ec, std::size_t) {
                        if (self->phase_ == Phase::Closing || conn != self->upstream_) return;
                        if (ec) {
                          // The response side sees the same failure and reports or retries it.
                          self->close_after_ = true;
                          return;
                        }
                        self->pump_request_body();
                      });
  read_response_head();
}

// ---- request body: guest -> upstream, through guest_in_ only ----

void HttpSession::pump_request_body() {
  if (request_done_) return;
  if (head_.framing == BodyFraming::None || (head_.framing == BodyFraming::ContentLength && request_remaining_ == 0)) {
    request_body_done();
    return;
  }
  std::string_view data = guest_in_.readable();
  if (data.empty()) {
    read_guest_for_body();
    return;
  }
  auto conn = upstream_;
  auto after_write = [self = shared_from_this(), conn](std::size_t consume, bool last) {
    return [self, conn, consume, last](const boost::system::error_code& ec, std::size_t) {
      if (self->phase_ == Phase::Closing || conn != self->upstream_) return;
      if (ec) {
        self->close_after_ = true;  // upstream stopped reading; its response decides what the guest sees
        return;
      }
      // Upstream took the bytes: it is alive; give it the full time again.
      self->upstream_deadline_ = Clock::now() + self->ctx_->options.upstream_response_timeout;
      self->guest_in_.consume(consume);
      if (self->head_.framing == BodyFraming::ContentLength) self->request_remaining_ -= consume;
      if (last) self->request_body_done();
      else self->pump_request_body();
    };
  };
  if (head_.framing == BodyFraming::ContentLength) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(request_remaining_, data.size()));
    conn->stream->write({boost::asio::buffer(data.data(), n)}, after_write(n, false));
    return;
  }
  ChunkStep step = request_chunks_.step(data);
  switch (step.kind) {
    case ChunkStep::Error:
      close_after_ = true;
      exchange_failed(400, "bad-request", "invalid chunked request body: " + request_chunks_.error());
      return;
    case ChunkStep::NeedMore:
      guest_in_.consume(step.consumed);
      read_guest_for_body();
      return;
    case ChunkStep::Data:
      request_chunk_line_ = chunk_size_line(step.data.size());
      conn->stream->write({boost::asio::buffer(request_chunk_line_), boost::asio::buffer(step.data.data(), step.data.size()),
                           boost::asio::buffer(kCrlf.data(), kCrlf.size())},
                          after_write(step.consumed, false));
      return;
    case ChunkStep::Done:
      conn->stream->write({boost::asio::buffer(kLastChunk.data(), kLastChunk.size())}, after_write(step.consumed, true));
      return;
  }
}

void HttpSession::read_guest_for_body() {
  // Waiting on the guest's body, not on upstream: a slow uploader is not a silent server.
  guest_deadline_ = Clock::now() + ctx_->options.guest_idle_timeout;
  if (!response_started_) upstream_deadline_ = Clock::time_point::max();
  guest_reading_ = true;
  guest_->read_some(guest_in_.prepare(), [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
    self->guest_reading_ = false;
    if (self->phase_ == Phase::Closing) return;
    self->guest_deadline_ = Clock::time_point::max();
    if (ec) {
      self->close_all();  // the guest went away in the middle of its request body
      return;
    }
    self->guest_in_.commit(n);
    self->pump_request_body();
  });
}

void HttpSession::request_body_done() {
  request_done_ = true;
  guest_deadline_ = Clock::time_point::max();
  if (!response_done_) upstream_deadline_ = Clock::now() + ctx_->options.upstream_response_timeout;
  maybe_finish_exchange();
}

void HttpSession::maybe_finish_exchange() {
  if (!response_done_ || phase_ != Phase::Exchange) return;
  if (!request_done_) {
    // Upstream answered before taking the whole body: the rest of the guest's
    // bytes cannot be told apart from a next request, so this connection ends.
    close_after_ = true;
    upstream_reusable_ = false;
  }
  if (upstream_ && (!upstream_reusable_ || !upstream_in_.empty())) {
    upstream_->stream->close();
    upstream_.reset();
    upstream_reusable_ = false;
  }
  if (close_after_) {
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
  if (upstream_) {
    upstream_->stream->close();
    upstream_.reset();
  }
  // With a read still pending (an unfinished request body) there is nothing
  // to wait for: close as soon as the response is out.
  auto finish = [self = shared_from_this()] {
    if (self->guest_reading_) {
      self->guest_->close();
      return;
    }
    self->guest_->shutdown([self] { self->linger(std::make_shared<std::size_t>(0)); });
  };
  if (bytes.empty()) {
    finish();
    return;
  }
  guest_out_ = std::move(bytes);
  guest_->write({boost::asio::buffer(guest_out_)}, [self = shared_from_this(), finish](const boost::system::error_code& ec, std::size_t) {
    if (ec) {
      self->guest_->close();
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
      if (!ec) self->guest_->close();
    });
  }
  guest_->read_some(upstream_in_.prepare(), [self = shared_from_this(), drained](const boost::system::error_code& ec, std::size_t n) {
    self->upstream_in_.clear();
    *drained += n;
    if (ec || *drained > kLingerBytes) {
      self->ticker_.cancel();
      self->guest_->close();
      return;
    }
    self->linger(drained);
  });
}

void HttpSession::close_all() {
  phase_ = Phase::Closing;
  ticker_.cancel();
  guest_->close();
  if (upstream_) {
    upstream_->stream->close();
    upstream_.reset();
  }
}

}  // namespace gondolin::egress
