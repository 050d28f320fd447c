#include "egress/tcp/byte_relay.h"

#include <vector>

namespace gondolin::egress {
namespace {

std::string duration_text(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + " s" : std::to_string(d.count()) + " ms";
}

}  // namespace

struct ByteRelay::Direction {
  Direction(ByteStream& f, ByteStream& t, std::uint64_t& c) : from(f), to(t), counter(c), buffer(kBufferSize) {}
  ByteStream& from;
  ByteStream& to;
  std::uint64_t& counter;
  std::vector<char> buffer;
  std::string first;  // bytes to send before the first read
  bool ended = false;
};

ByteRelay::ByteRelay(std::unique_ptr<ByteStream> a, std::unique_ptr<ByteStream> b, Finished done)
    : a_(std::move(a)),
      b_(std::move(b)),
      forward_(std::make_unique<Direction>(*a_, *b_, totals_.a_to_b)),
      backward_(std::make_unique<Direction>(*b_, *a_, totals_.b_to_a)),
      done_(std::move(done)) {}

std::shared_ptr<ByteRelay> ByteRelay::start(std::unique_ptr<ByteStream> a, std::unique_ptr<ByteStream> b,
                                            std::string a_first, Finished done, IdleTimeout idle) {
  auto relay = std::make_shared<ByteRelay>(std::move(a), std::move(b), std::move(done));
  relay->last_activity_ = std::chrono::steady_clock::now();
  if (idle.after.count() > 0) {
    relay->idle_after_ = idle.after;
    relay->idle_timer_.emplace(idle.executor);
    relay->watch_idle(idle.after);
  }
  relay->forward_->first = std::move(a_first);
  if (!relay->forward_->first.empty()) {
    Direction& d = *relay->forward_;
    d.to.write({boost::asio::buffer(d.first)}, [relay, &d](const boost::system::error_code& ec, std::size_t n) {
      if (relay->finished_) return;
      if (ec) return relay->abort("write: " + ec.message());
      d.counter += n;
      relay->last_activity_ = std::chrono::steady_clock::now();
      d.first.clear();
      relay->pump(d);
    });
  } else {
    relay->pump(*relay->forward_);
  }
  relay->pump(*relay->backward_);
  return relay;
}

void ByteRelay::pump(Direction& d) {
  d.from.read_some(boost::asio::buffer(d.buffer),
                   [self = shared_from_this(), &d](const boost::system::error_code& ec, std::size_t n) {
                     if (self->finished_) return;
                     if (n > 0) {
                       self->last_activity_ = std::chrono::steady_clock::now();
                       return self->write_chunk(d, n);
                     }
                     if (ec == boost::asio::error::eof) return self->ended(d);
                     self->abort(ec ? "read: " + ec.message() : "read returned nothing");
                   });
}

void ByteRelay::write_chunk(Direction& d, std::size_t n) {
  d.to.write({boost::asio::buffer(d.buffer.data(), n)},
             [self = shared_from_this(), &d](const boost::system::error_code& ec, std::size_t written) {
               if (self->finished_) return;
               if (ec) return self->abort("write: " + ec.message());
               d.counter += written;
               self->last_activity_ = std::chrono::steady_clock::now();
               self->pump(d);
             });
}

void ByteRelay::ended(Direction& d) {
  d.ended = true;
  // The other side may still answer: pass the half-close on and keep the
  // opposite direction running.
  d.to.shutdown([self = shared_from_this()] { self->finish_if_done(); });
}

void ByteRelay::watch_idle(std::chrono::steady_clock::duration wait) {
  idle_timer_->expires_after(wait);
  idle_timer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->finished_) return;
    const auto quiet = std::chrono::steady_clock::now() - self->last_activity_;
    if (quiet < self->idle_after_) return self->watch_idle(self->idle_after_ - quiet);
    self->totals_.idle = true;
    self->abort("idle timeout: no bytes either way for " + duration_text(self->idle_after_));
  });
}

// A pending wait holds the relay (and its buffers) alive: end it with the relay.
void ByteRelay::stop_idle_timer() {
  if (idle_timer_) idle_timer_->cancel();
}

void ByteRelay::finish_if_done() {
  if (finished_ || !forward_->ended || !backward_->ended) return;
  finished_ = true;
  stop_idle_timer();
  a_->close();
  b_->close();
  if (done_) std::exchange(done_, nullptr)(totals_);
}

void ByteRelay::abort(const std::string& why) {
  if (finished_) return;
  finished_ = true;
  stop_idle_timer();
  totals_.error = why;
  a_->close();
  b_->close();
  if (done_) std::exchange(done_, nullptr)(totals_);
}

}  // namespace gondolin::egress
