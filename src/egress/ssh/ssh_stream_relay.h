// The bytes of one channel stream (stdout, stderr or stdin) on their way from
// one SSH channel to another, held in one bounded buffer.
//
// Why not simply read from the source when the destination has room: every
// ssh_channel_read* call in libssh 0.10 re-opens the source's window to
// 1,280,000 bytes whatever it still holds buffered, so small reads towards a
// slow destination let the peer pile up data without bound. Data taken in the
// channel's data callback does not have that flaw (libssh counts what is
// still buffered before it grows the window). So the callback feeds take();
// and only when this buffer is empty, and can take more than a whole window,
// refill() reads what libssh kept back. Together: at most
// kStreamBufferBytes here plus under 2 MB inside libssh per stream.
#pragma once

#include <libssh/libssh.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gondolin::egress {

// Must exceed libssh 0.10's channel window (WINDOWBASE, 1,280,000 bytes).
inline constexpr std::size_t kStreamBufferBytes = 1536 * 1024;

// More than this buffered inside libssh for one stream means the peer ignored
// the window we granted (libssh accepts such data anyway): it is cut off.
inline constexpr std::uint32_t kMaxChannelBuffered = 4 * 1024 * 1024;

class StreamRelay {
 public:
  // From a data callback: copies what fits, returns how many bytes it took
  // (libssh keeps the rest and does not widen the window for it).
  std::uint32_t take(const void* data, std::uint32_t len);

  // If empty, moves the bytes libssh is holding for `from` into the buffer.
  // Returns false if the source session failed.
  bool refill(ssh_channel from, bool is_stderr, bool& progress);

  // Writes what `to` accepts now without blocking (its window, and nothing
  // still queued on its socket). Returns false if the write failed.
  bool flush(ssh_channel to, bool is_stderr, bool& progress);

  bool empty() const { return begin_ == data_.size(); }
  std::size_t size() const { return data_.size() - begin_; }

  // libssh may hold bytes we have not taken (set when take() was short, or
  // when data may have arrived before the callback was installed).
  void mark_held_back() { held_back_ = true; }

 private:
  std::vector<char> data_;  // bytes [begin_, size()) are pending
  std::size_t begin_ = 0;
  bool held_back_ = false;
};

// True while `channel`'s session still holds bytes it could not send yet.
bool socket_backlogged(ssh_channel channel);

}  // namespace gondolin::egress
