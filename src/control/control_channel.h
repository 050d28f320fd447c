// Frame I/O over the control socket (QEMU's virtio-serial chardev). Runs on
// the VM's io thread. Every frame from the guest is validated by the decoder
// (version, type, size bound) before anyone sees it; the socket's read loop
// and write queue are util/stream_channel's.
#pragma once

#include <boost/asio/io_context.hpp>

#include <array>
#include <functional>
#include <string>
#include <vector>

#include "proto/wire.h"
#include "util/stream_channel.h"
#include "util/unique_fd.h"

namespace gondolin::control {

class ControlChannel final : public StreamChannel {
 public:
  using FrameHandler = std::function<void(proto::FrameDecoder::Frame&)>;
  using CloseHandler = std::function<void(const std::string& why)>;

  ControlChannel(boost::asio::io_context& io, UniqueFd socket);

  // on_close runs once, with why, when the guest closes the channel or
  // breaks the framing; never after close().
  void start(FrameHandler on_frame, CloseHandler on_close);
  void send(std::vector<std::uint8_t> frame) { StreamChannel::send(std::move(frame)); }

 private:
  boost::asio::mutable_buffer read_space() override { return boost::asio::buffer(read_buf_); }
  void on_received(std::size_t size) override;
  void on_read_error(const boost::system::error_code& ec) override;
  void on_write_error(const boost::system::error_code& ec) override;
  void on_failure(const std::string& why) override;

  proto::FrameDecoder decoder_;
  std::array<std::uint8_t, 64 * 1024> read_buf_{};
  FrameHandler on_frame_;
  CloseHandler on_close_;
};

}  // namespace gondolin::control
