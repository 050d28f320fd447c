#include "net/qemu_net_link.h"

#include "util/logging.h"

namespace gondolin::net {

namespace asio = boost::asio;

QemuNetLink::QemuNetLink(asio::io_context& io, UniqueFd socket) : StreamChannel(io, std::move(socket)) {}

void QemuNetLink::start(FrameHandler on_frame, Callback on_batch_end, Callback on_drained) {
  on_frame_ = std::move(on_frame);
  on_batch_end_ = std::move(on_batch_end);
  on_drained_ = std::move(on_drained);
  partial_.reserve(kMaxFrame + 4);
  start_reading();
}

void QemuNetLink::on_read_error(const boost::system::error_code& ec) {
  if (ec != asio::error::operation_aborted) log().debug("net: link to QEMU closed: {}", ec.message());
}

void QemuNetLink::on_write_error(const boost::system::error_code& ec) {
  log().debug("net: writing to QEMU failed: {}", ec.message());
}

void QemuNetLink::on_written(std::size_t size) {
  const bool was_congested = queued_bytes() + size > kCongestedAbove;
  if (was_congested && !congested() && on_drained_) on_drained_();
}

void QemuNetLink::on_received(std::size_t n) {
  Bytes in(read_buf_.data(), n);
  while (!in.empty()) {
    if (skip_ > 0) {
      const std::size_t k = std::min(skip_, in.size());
      skip_ -= k;
      in = in.subspan(k);
      continue;
    }
    // Fast path: whole frames straight out of the read buffer.
    if (partial_.empty() && in.size() >= 4) {
      const std::size_t len = load_u32(in.data());
      if (len > kMaxFrame) {
        ++oversized_;
        skip_ = len;
        in = in.subspan(4);
        continue;
      }
      if (in.size() >= 4 + len) {
        on_frame_(in.subspan(4, len));
        in = in.subspan(4 + len);
        continue;
      }
    }
    // Slow path: gather the length prefix, then the frame, across reads.
    if (partial_.size() < 4) {
      const std::size_t k = std::min<std::size_t>(4 - partial_.size(), in.size());
      partial_.insert(partial_.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(k));
      in = in.subspan(k);
      if (partial_.size() < 4) break;
      const std::size_t len = load_u32(partial_.data());
      if (len > kMaxFrame) {
        ++oversized_;
        skip_ = len;
        partial_.clear();
      }
      continue;
    }
    const std::size_t len = load_u32(partial_.data());
    const std::size_t k = std::min(4 + len - partial_.size(), in.size());
    partial_.insert(partial_.end(), in.begin(), in.begin() + static_cast<std::ptrdiff_t>(k));
    in = in.subspan(k);
    if (partial_.size() == 4 + len) {
      on_frame_(Bytes(partial_).subspan(4));
      partial_.clear();
    }
  }
  if (on_batch_end_) on_batch_end_();
}

bool QemuNetLink::send(Bytes frame) {
  if (closed() || frame.size() > kMaxFrame) return false;
  if (queued_bytes() + frame.size() + 4 > kQueueLimit) {
    ++dropped_;
    return false;
  }
  const auto len = static_cast<std::uint32_t>(frame.size());
  const std::uint8_t prefix[4] = {static_cast<std::uint8_t>(len >> 24), static_cast<std::uint8_t>(len >> 16),
                                  static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len)};
  append(prefix, sizeof prefix);
  append(frame.data(), frame.size());
  return true;
}

}  // namespace gondolin::net
