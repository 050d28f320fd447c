// Frame I/O over the control socket (QEMU's virtio-serial chardev). Runs on
// the VM's io thread. Every frame from the guest is validated by the decoder
// (version, type, size bound) before anyone sees it.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <array>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proto/control_protocol.h"
#include "util/unique_fd.h"

namespace gondolin::control {

class ControlChannel : public std::enable_shared_from_this<ControlChannel> {
 public:
  using FrameHandler = std::function<void(proto::FrameDecoder::Frame&)>;
  using CloseHandler = std::function<void(const std::string& why)>;

  ControlChannel(boost::asio::io_context& io, UniqueFd socket);

  void start(FrameHandler on_frame, CloseHandler on_close);
  void send(std::vector<std::uint8_t> frame);
  void close();
  std::size_t queued_bytes() const { return queued_bytes_; }

 private:
  void read_more();
  void write_more();
  void fail(const std::string& why);

  boost::asio::local::stream_protocol::socket socket_;
  proto::FrameDecoder decoder_;
  std::array<std::uint8_t, 64 * 1024> read_buf_{};
  std::deque<std::vector<std::uint8_t>> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  FrameHandler on_frame_;
  CloseHandler on_close_;
};

}  // namespace gondolin::control
