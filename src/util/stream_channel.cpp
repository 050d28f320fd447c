#include "util/stream_channel.h"

#include <boost/asio/write.hpp>

namespace gondolin {

StreamChannel::StreamChannel(boost::asio::io_context& io, UniqueFd socket)
    : socket_(io, boost::asio::local::stream_protocol(), socket.release()) {}

StreamChannel::~StreamChannel() = default;

void StreamChannel::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
  pending_.clear();
  queued_bytes_ = 0;
}

void StreamChannel::report_failure(const std::string& why) {
  if (closed_ || failed_) return;
  failed_ = true;
  on_failure(why);
}

void StreamChannel::start_reading() {
  read_loop_on_ = true;
  read_more();
}

void StreamChannel::read_more() {
  if (closed_ || !read_loop_on_ || reading_ || reading_paused()) return;
  reading_ = true;
  socket_.async_read_some(read_space(),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                            self->reading_ = false;
                            if (self->closed_) return;
                            if (ec) return self->on_read_error(ec);
                            self->on_received(n);
                            self->read_more();
                          });
}

void StreamChannel::send(std::vector<std::uint8_t> chunk) {
  if (closed_ || chunk.empty()) return;
  queued_bytes_ += chunk.size();
  pending_.push_back(std::move(chunk));
  if (writing_.empty()) write_more();
}

void StreamChannel::append(const std::uint8_t* data, std::size_t size) {
  if (closed_ || size == 0) return;
  if (pending_.empty() || pending_.back().size() + size > kCoalesceBytes) pending_.emplace_back();
  pending_.back().insert(pending_.back().end(), data, data + size);
  queued_bytes_ += size;
  if (writing_.empty()) write_more();
}

void StreamChannel::write_more() {
  if (closed_ || pending_.empty()) return;
  std::vector<boost::asio::const_buffer> buffers;
  while (!pending_.empty() && writing_.size() < kMaxBatch) {
    writing_.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  for (const auto& chunk : writing_) buffers.emplace_back(boost::asio::buffer(chunk));
  boost::asio::async_write(socket_, buffers,
                           [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                             if (self->closed_) return;
                             std::size_t done = 0;
                             for (const auto& chunk : self->writing_) done += chunk.size();
                             self->queued_bytes_ -= done;
                             self->writing_.clear();
                             if (ec) return self->on_write_error(ec);
                             self->on_written(done);
                             self->write_more();
                             self->read_more();  // resumes a loop the subclass had paused
                           });
}

}  // namespace gondolin
