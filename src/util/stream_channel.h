// One connected unix stream socket served on an io thread: the read loop,
// the write queue and the fail-once rule that the control channel, a serial
// mount's port and the guest's network link share. Each of those is a
// subclass that parses its own framing out of the bytes it is given.
//
// Theory of operation:
// - Reading is a loop of async_read_some into space the subclass provides
//   (read_space); each read's bytes go to on_received, then the loop goes
//   on unless the channel is closed or the subclass holds reading back
//   (reading_paused, e.g. while too many replies wait). A paused loop
//   resumes by itself after each completed write, or by start_reading().
// - Writing is a queue of byte chunks: at most one write is in flight, and
//   it gathers up to kMaxBatch chunks. send() queues a chunk as it is;
//   append() adds bytes to the last queued chunk (not one being written)
//   while it stays under kCoalesceBytes, so many small frames leave in few
//   system calls.
// - report_failure() reaches on_failure once, however many times the
//   channel fails; close() is idempotent, drops what is queued, and ends
//   both loops (handlers that complete later do nothing).
// Invariants: queued_bytes() is the sum of every chunk queued or in flight;
// every handler holds a shared_ptr to the channel, so a subclass must be
// owned by a shared_ptr.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "util/unique_fd.h"

namespace gondolin {

class StreamChannel : public std::enable_shared_from_this<StreamChannel> {
 public:
  static constexpr std::size_t kMaxBatch = 64;
  static constexpr std::size_t kCoalesceBytes = 64 * 1024;

  StreamChannel(boost::asio::io_context& io, UniqueFd socket);
  virtual ~StreamChannel();
  StreamChannel(const StreamChannel&) = delete;
  StreamChannel& operator=(const StreamChannel&) = delete;

  void close();
  bool closed() const { return closed_; }
  std::size_t queued_bytes() const { return queued_bytes_; }

 protected:
  void start_reading();  // starts the read loop; later calls resume a paused one
  void send(std::vector<std::uint8_t> chunk);
  void append(const std::uint8_t* data, std::size_t size);
  void report_failure(const std::string& why);
  bool failed() const { return failed_; }
  // No chunk queued or being written.
  bool write_idle() const { return pending_.empty() && writing_.empty(); }
  int native_handle() { return socket_.native_handle(); }

  virtual boost::asio::mutable_buffer read_space() = 0;
  virtual void on_received(std::size_t size) = 0;
  virtual void on_read_error(const boost::system::error_code& ec) = 0;
  virtual void on_write_error(const boost::system::error_code& ec) = 0;
  // After a write completed; `size` bytes left the queue. (A failed write's
  // chunks leave it too, before on_write_error.)
  virtual void on_written(std::size_t /*size*/) {}
  virtual void on_failure(const std::string& why) = 0;
  virtual bool reading_paused() const { return false; }

 private:
  void read_more();
  void write_more();

  boost::asio::local::stream_protocol::socket socket_;
  std::deque<std::vector<std::uint8_t>> pending_;   // queued, not yet being written
  std::vector<std::vector<std::uint8_t>> writing_;  // the write in flight
  std::size_t queued_bytes_ = 0;
  bool read_loop_on_ = false;  // start_reading() was called
  bool reading_ = false;       // a read is in flight
  bool closed_ = false;
  bool failed_ = false;
};

}  // namespace gondolin
