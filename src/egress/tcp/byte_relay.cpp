#include "egress/tcp/byte_relay.h"

#include <vector>

namespace gondolin::egress {

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
    : a_(std::move(a)), b_(std::move(b)), forward_(std::make_unique<Direction>(*a_, *b_, totals_.a_to_b)),
      backward_(std::make_unique<Direction>(*b_, *a_, totals_.b_to_a)), done_(std::move(done)) {}

std::shared_ptr<ByteRelay> ByteRelay::start(std::unique_ptr<ByteStream> a, std::unique_ptr<ByteStream> b,
                                            std::string a_first, Finished done) {
  auto relay = std::make_shared<ByteRelay>(std::move(a), std::move(b), std::move(done));
  relay->forward_->first = std::move(a_first);
  if (!relay->forward_->first.empty()) {
    Direction& d = *relay->forward_;
    d.to.write({boost::asio::buffer(d.first)}, [relay, &d](const boost::system::error_code& ec, std::size_t n) {
      if (relay->finished_) return;
      if (ec) return relay->abort("write: " + ec.message());
      d.counter += n;
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
                      if (n > 0) return self->write_chunk(d, n);
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
                self->pump(d);
              });
}

void ByteRelay::ended(Direction& d) {
  d.ended = true;
  // The other side may still answer: pass the half-close on and keep the
  // opposite direction running.
  d.to.shutdown([self = shared_from_this()] { self->finish_if_done(); });
}

void ByteRelay::finish_if_done() {
  if (finished_ || !forward_->ended || !backward_->ended) return;
  finished_ = true;
  a_->close();
  b_->close();
  if (done_) std::exchange(done_, nullptr)(totals_);
}

void ByteRelay::abort(const std::string& why) {
  if (finished_) return;
  finished_ = true;
  totals_.error = why;
  a_->close();
  b_->close();
  if (done_) std::exchange(done_, nullptr)(totals_);
}

}  // namespace gondolin::egress
