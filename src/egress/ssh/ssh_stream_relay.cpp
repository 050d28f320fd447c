#include "egress/ssh/ssh_stream_relay.h"

#include <algorithm>
#include <cstring>

namespace gondolin::egress {
namespace {

constexpr std::uint32_t kWriteChunk = 32 * 1024;

}  // namespace

bool socket_backlogged(ssh_channel channel) {
  return (ssh_get_status(ssh_channel_get_session(channel)) & SSH_WRITE_PENDING) != 0;
}

std::uint32_t StreamRelay::take(const void* data, std::uint32_t len) {
  if (begin_ == data_.size()) {
    data_.clear();
    begin_ = 0;
  }
  std::size_t room = kStreamBufferBytes - size();
  auto n = static_cast<std::uint32_t>(std::min<std::size_t>(room, len));
  if (n < len) held_back_ = true;
  if (n == 0) return 0;
  // Compact before growing so the buffer never exceeds its bound.
  if (data_.size() + n > kStreamBufferBytes) {
    data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(begin_));
    begin_ = 0;
  }
  const char* p = static_cast<const char*>(data);
  data_.insert(data_.end(), p, p + n);
  return n;
}

bool StreamRelay::refill(ssh_channel from, bool is_stderr, bool& progress) {
  if (!empty() || !held_back_) return true;
  held_back_ = false;
  int available = ssh_channel_poll(from, is_stderr ? 1 : 0);
  if (available == SSH_ERROR) return false;
  if (available <= 0 || !empty()) return true;  // nothing held back (or the poll's callback filled us)
  if (static_cast<std::size_t>(available) > kStreamBufferBytes) held_back_ = true;
  data_.assign(std::min<std::size_t>(static_cast<std::size_t>(available), kStreamBufferBytes), '\0');
  begin_ = 0;
  int n = ssh_channel_read_nonblocking(from, data_.data(), static_cast<std::uint32_t>(data_.size()), is_stderr ? 1 : 0);
  if (n == SSH_ERROR) {
    data_.clear();
    return false;
  }
  data_.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  progress |= n > 0;
  return true;
}

bool StreamRelay::flush(ssh_channel to, bool is_stderr, bool& progress) {
  while (!empty() && !socket_backlogged(to)) {
    std::uint32_t room = ssh_channel_window_size(to);
    if (room == 0) break;
    auto n = static_cast<std::uint32_t>(std::min<std::size_t>({size(), room, kWriteChunk}));
    const char* p = data_.data() + begin_;
    int w = is_stderr ? ssh_channel_write_stderr(to, p, n) : ssh_channel_write(to, p, n);
    if (w < 0) return false;
    begin_ += static_cast<std::size_t>(w);
    progress |= w > 0;
    if (static_cast<std::uint32_t>(w) < n) break;
  }
  if (empty()) {
    data_.clear();
    begin_ = 0;
  }
  return true;
}

}  // namespace gondolin::egress
