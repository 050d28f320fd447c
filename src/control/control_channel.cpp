#include "control/control_channel.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

namespace gondolin::control {

ControlChannel::ControlChannel(boost::asio::io_context& io, UniqueFd socket)
    : socket_(io, boost::asio::local::stream_protocol(), socket.release()) {}

void ControlChannel::start(FrameHandler on_frame, CloseHandler on_close) {
  on_frame_ = std::move(on_frame);
  on_close_ = std::move(on_close);
  read_more();
}

void ControlChannel::send(std::vector<std::uint8_t> frame) {
  if (closed_) return;
  queued_bytes_ += frame.size();
  queue_.push_back(std::move(frame));
  if (!writing_) write_more();
}

void ControlChannel::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  socket_.close(ec);
  queue_.clear();
  queued_bytes_ = 0;
}

void ControlChannel::fail(const std::string& why) {
  if (closed_) return;
  close();
  if (on_close_) on_close_(why);
}

void ControlChannel::read_more() {
  socket_.async_read_some(
      boost::asio::buffer(read_buf_), [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
        if (self->closed_) return;
        if (ec) return self->fail(ec == boost::asio::error::eof
                                    ? "the guest closed the control channel (it rebooted, powered off or "
                                      "crashed; a gondolin VM does not reboot)"
                                                                : "control channel: " + ec.message());
        std::size_t off = 0;
        while (off < n && !self->closed_) {
          off += self->decoder_.feed(self->read_buf_.data() + off, n - off);
          if (self->decoder_.error() != proto::HeaderError::None)
            return self->fail(std::string("the guest sent a malformed control frame (") +
                              proto::describe(self->decoder_.error()) + ")");
          if (self->decoder_.has_frame()) {
            auto frame = self->decoder_.take();
            self->on_frame_(frame);
          }
        }
        if (!self->closed_) self->read_more();
      });
}

void ControlChannel::write_more() {
  if (queue_.empty() || closed_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  boost::asio::async_write(socket_, boost::asio::buffer(queue_.front()),
                           [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                             if (self->closed_) return;
                             if (ec) return self->fail("control channel write: " + ec.message());
                             self->queued_bytes_ -= n;
                             self->queue_.pop_front();
                             self->write_more();
                           });
}

}  // namespace gondolin::control
