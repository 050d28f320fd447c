#include "control/control_channel.h"

namespace gondolin::control {

ControlChannel::ControlChannel(boost::asio::io_context& io, UniqueFd socket) : StreamChannel(io, std::move(socket)) {}

void ControlChannel::start(FrameHandler on_frame, CloseHandler on_close) {
  on_frame_ = std::move(on_frame);
  on_close_ = std::move(on_close);
  start_reading();
}

void ControlChannel::on_received(std::size_t n) {
  std::size_t off = 0;
  while (off < n && !closed()) {
    off += decoder_.feed(read_buf_.data() + off, n - off);
    if (decoder_.error() != proto::HeaderError::None)
      return report_failure(std::string("the guest sent a malformed control frame (") +
                            proto::describe(decoder_.error()) + ")");
    if (decoder_.has_frame()) {
      auto frame = decoder_.take();
      on_frame_(frame);
    }
  }
}

void ControlChannel::on_read_error(const boost::system::error_code& ec) {
  report_failure(ec == boost::asio::error::eof ? "the guest closed the control channel (it rebooted, powered off or "
                                                 "crashed; a gondolin VM does not reboot)"
                                               : "control channel: " + ec.message());
}

void ControlChannel::on_write_error(const boost::system::error_code& ec) {
  report_failure("control channel write: " + ec.message());
}

void ControlChannel::on_failure(const std::string& why) {
  close();
  if (on_close_) on_close_(why);
}

}  // namespace gondolin::control
