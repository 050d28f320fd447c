// The guest's Ethernet link: QEMU's `-netdev stream` socket, on which every
// frame travels as a 4-byte big-endian length followed by the frame. The
// socket's read loop and write queue are util/stream_channel's.
//
// Guest -> host: frames are parsed out of a fixed read buffer and handed on
// one by one; oversized frames are skipped without being buffered.
// Host -> guest: frames are appended to the write queue (coalesced into few
// large writes) up to a bound and are then dropped, as a NIC would (TCP
// retransmits); above a lower mark the link reports itself congested so
// producers can hold back.
#pragma once

#include <boost/asio/io_context.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

#include "net/bytes.h"
#include "util/stream_channel.h"
#include "util/unique_fd.h"

namespace gondolin::net {

class QemuNetLink final : public StreamChannel {
 public:
  using FrameHandler = std::function<void(Bytes frame)>;
  using Callback = std::function<void()>;

  // Frames are at most this long (MTU 16384 + Ethernet header, with room).
  static constexpr std::size_t kMaxFrame = 16384 + 64;
  static constexpr std::size_t kQueueLimit = 4u << 20;
  static constexpr std::size_t kCongestedAbove = 1u << 20;

  QemuNetLink(boost::asio::io_context& io, UniqueFd socket);
  // on_frame: one frame from the guest. on_batch_end: after each read's
  // frames. on_drained: the queue fell below the congestion mark.
  void start(FrameHandler on_frame, Callback on_batch_end, Callback on_drained);

  // Queues a frame for the guest; false if it was dropped (queue full, closed).
  bool send(Bytes frame);
  bool congested() const { return queued_bytes() > kCongestedAbove; }
  std::uint64_t frames_dropped() const { return dropped_; }
  std::uint64_t frames_oversized() const { return oversized_; }

 private:
  boost::asio::mutable_buffer read_space() override { return boost::asio::buffer(read_buf_); }
  void on_received(std::size_t size) override;
  void on_read_error(const boost::system::error_code& ec) override;
  void on_write_error(const boost::system::error_code& ec) override;
  void on_written(std::size_t size) override;
  void on_failure(const std::string&) override {}

  FrameHandler on_frame_;
  Callback on_batch_end_, on_drained_;

  std::array<std::uint8_t, 64 * 1024> read_buf_{};
  std::vector<std::uint8_t> partial_;  // an incomplete length prefix or frame
  std::size_t skip_ = 0;               // bytes left of an oversized frame
  std::uint64_t dropped_ = 0, oversized_ = 0;
};

}  // namespace gondolin::net
