// Blocking frame I/O on a unix socket between two gondolin processes of the
// same user (session attach and snapshot requests). Writes may come from
// several threads; reads from one. Not a util/stream_channel: those are
// served by an io thread's event loop, while this one is read and written
// by the caller's own (user) threads; the framing (proto::FrameDecoder) is
// the same.
#pragma once

#include <mutex>
#include <optional>
#include <vector>

#include "proto/control_protocol.h"
#include "util/unique_fd.h"

namespace gondolin::session {

class FrameSocket {
 public:
  explicit FrameSocket(UniqueFd fd) : fd_(std::move(fd)) {}

  // The next frame; nullopt when the peer closed. Throws gondolin::Error on a malformed frame.
  std::optional<proto::FrameDecoder::Frame> read();
  // Returns false if the peer is gone.
  bool write(const std::vector<std::uint8_t>& frame);
  // Wakes a blocked read (both directions end).
  void shutdown();
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  std::mutex write_mutex_;
  proto::FrameDecoder decoder_;
  std::vector<std::uint8_t> pending_;  // read but not yet decoded
  std::size_t pending_offset_ = 0;
};

// Connects to a session socket; throws gondolin::Error naming the path.
UniqueFd connect_unix(const std::string& path);

}  // namespace gondolin::session
