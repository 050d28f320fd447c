#include "egress/http/body_relay.h"

namespace gondolin::egress {
namespace {

constexpr std::string_view kCrlf = "\r\n";
constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace

void BodyRelay::start(std::weak_ptr<void> owner, std::shared_ptr<void> pin, FlatBuffer& in, ByteStream& source,
                      ByteStream& sink, BodyFramingPlan plan, BodyRelayEvents events) {
  ++generation_;
  owner_ = std::move(owner);
  pin_ = std::move(pin);
  in_ = &in;
  source_ = &source;
  sink_ = &sink;
  plan_ = plan;
  events_ = std::make_shared<const BodyRelayEvents>(std::move(events));
  remaining_ = plan.length;
  chunks_ = ChunkedDecoder{};
  pump();
}

void BodyRelay::cancel() {
  ++generation_;
  pin_.reset();
  events_.reset();
}

template <typename F>
auto BodyRelay::guarded(F f) {
  return [this, owner = owner_.lock(), pin = pin_, events = events_, generation = generation_, f = std::move(f)](
             const boost::system::error_code& ec, std::size_t n) mutable {
    if (!owner || generation != generation_) return;
    f(*events, ec, n);
  };
}

void BodyRelay::pump() {
  for (;;) {
    if (plan_.in == BodyFraming::None || (plan_.in == BodyFraming::ContentLength && remaining_ == 0)) return finish();
    std::string_view data = in_->readable();
    if (data.empty()) return read_source();
    switch (plan_.in) {
      case BodyFraming::ContentLength:
        data = data.substr(0, static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size())));
        break;
      case BodyFraming::UntilClose: break;
      case BodyFraming::Chunked: {
        ChunkStep step = chunks_.step(data);
        switch (step.kind) {
          case ChunkStep::Error: return std::shared_ptr<const BodyRelayEvents>(events_)->bad_framing(chunks_.error());
          case ChunkStep::NeedMore: in_->consume(step.consumed); return read_source();
          case ChunkStep::Done: in_->consume(step.consumed); return finish();
          case ChunkStep::Data: break;
        }
        if (write_data(step.data, step.consumed, 0)) return;
        continue;
      }
      case BodyFraming::None: return;
    }
    // Content-Length or until-close data: all of it is body.
    if (write_data(data, data.size(), plan_.in == BodyFraming::ContentLength ? data.size() : 0)) return;
  }
}

bool BodyRelay::write_data(std::string_view data, std::size_t consume, std::size_t body_bytes) {
  if (plan_.guard) {
    guarded_.clear();
    plan_.guard->feed(data, guarded_);
    if (guarded_.empty()) {
      in_->consume(consume);
      remaining_ -= body_bytes;
      return false;
    }
    data = guarded_;
  }
  write(framed(data), consume, body_bytes, false);
  return true;
}

std::vector<boost::asio::const_buffer> BodyRelay::framed(std::string_view data) {
  if (!plan_.chunked_out) return {boost::asio::buffer(data.data(), data.size())};
  chunk_line_ = chunk_size_line(data.size());
  return {boost::asio::buffer(chunk_line_), boost::asio::buffer(data.data(), data.size()),
          boost::asio::buffer(kCrlf.data(), kCrlf.size())};
}

void BodyRelay::read_source() {
  events_->wait_source();
  source_->read_some(in_->prepare(),
                     guarded([this](const BodyRelayEvents& events, const boost::system::error_code& ec, std::size_t n) {
                       events.source_read();
                       if (!events.current()) return;
                       if (!ec) {
                         in_->commit(n);
                         return pump();
                       }
                       if (is_peer_close(ec) && plan_.in == BodyFraming::UntilClose)
                         return finish();  // the body ended with the connection
                       events.source_failed(ec.message());
                     }));
}

void BodyRelay::finish() {
  guarded_.clear();
  if (plan_.guard) plan_.guard->flush(guarded_);
  std::vector<boost::asio::const_buffer> bufs;
  if (!guarded_.empty()) bufs = framed(guarded_);
  if (plan_.chunked_out) bufs.push_back(boost::asio::buffer(kLastChunk.data(), kLastChunk.size()));
  // A copy: done() may end the exchange, which drops events_.
  if (bufs.empty()) return std::shared_ptr<const BodyRelayEvents>(events_)->done();
  write(std::move(bufs), 0, 0, true);
}

void BodyRelay::write(std::vector<boost::asio::const_buffer> bufs, std::size_t consume, std::size_t body_bytes,
                      bool last) {
  events_->wait_sink();
  sink_->write(std::move(bufs),
               guarded([this, consume, body_bytes, last](const BodyRelayEvents& events,
                                                         const boost::system::error_code& ec, std::size_t) {
                 if (!events.current()) return;
                 if (ec) return events.sink_failed();
                 events.sink_wrote();
                 in_->consume(consume);
                 remaining_ -= body_bytes;
                 if (last) return events.done();
                 pump();
               }));
}

}  // namespace gondolin::egress
