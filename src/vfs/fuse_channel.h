// The host end of one mount's virtio-serial port: the guest's forwarder
// writes raw FUSE requests into it (each carries its own length) and reads
// raw replies back. Runs on the VM's io thread.
//
// Bounds: one request is at most fuse::kMaxRequest bytes, so the input
// buffer is fixed; replies wait in a queue, and while more than
// kMaxQueuedReplyBytes wait we stop reading requests (the guest's forwarder
// then blocks, and with it the guest's FUSE queue).
#pragma once

#include <boost/asio/io_context.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/stream_channel.h"
#include "util/unique_fd.h"
#include "vfs/fuse_server.h"

namespace gondolin::vfs {

class FuseChannel final : public StreamChannel {
 public:
  static constexpr std::size_t kMaxQueuedReplyBytes = 8u << 20;

  FuseChannel(boost::asio::io_context& io, UniqueFd socket, std::unique_ptr<FuseServer> server, std::string label);

  // Serves until close(). If the guest breaks the stream the mount stops
  // alone (one warning; the guest's forwarder answers EIO), the VM goes on.
  void start() { start_reading(); }

  FuseServer& server() { return *server_; }
  // Nothing in flight either way: no partial request, no reply waiting, and
  // no bytes in the socket that either end has not read yet. A snapshot
  // taken now loses no request.
  bool quiet();
  const std::string& label() const { return label_; }
  // Requests handled so far, by opcode (index 0 counts unknown opcodes).
  const std::array<std::uint64_t, 64>& request_counts() const { return counts_; }
  std::string describe_counts() const;

 private:
  boost::asio::mutable_buffer read_space() override {
    return boost::asio::buffer(in_.data() + filled_, in_.size() - filled_);
  }
  void on_received(std::size_t size) override;
  void on_read_error(const boost::system::error_code& ec) override;
  void on_write_error(const boost::system::error_code& ec) override;
  void on_written(std::size_t size) override;
  void on_failure(const std::string& why) override;
  // Back-pressure: while this many reply bytes wait, the guest's requests do too.
  bool reading_paused() const override { return failed() || queued_bytes() > kMaxQueuedReplyBytes; }

  std::unique_ptr<FuseServer> server_;
  std::string label_;
  std::vector<std::uint8_t> in_;
  std::size_t filled_ = 0;
  std::array<std::uint64_t, 64> counts_{};
};

}  // namespace gondolin::vfs
