// Moves bytes both ways between two connections until both directions have
// ended, for mapped TCP and ingress. Each direction has one fixed buffer and
// reads only after the previous chunk is fully written, so a side that stops
// reading stops the other side from being read (back-pressure, never growth).
// An end of stream on one side becomes a half-close (FIN) on the other; an
// error on either side closes both at once, and so does silence: no byte
// either way for the idle timeout.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "egress/byte_stream.h"

namespace gondolin::egress {

// Closes both sides once no byte has moved either way for `after` (zero:
// never). The timer runs on `executor`, the streams' own.
struct RelayIdleTimeout {
  boost::asio::any_io_executor executor;
  std::chrono::milliseconds after{0};
};

class ByteRelay : public std::enable_shared_from_this<ByteRelay> {
 public:
  static constexpr std::size_t kBufferSize = 64 * 1024;  // per direction

  struct Totals {
    std::uint64_t a_to_b = 0;
    std::uint64_t b_to_a = 0;
    std::string error;  // empty for an orderly close of both directions
    bool idle = false;  // closed by the idle timeout (error says so too)
  };
  using Finished = std::function<void(const Totals&)>;

  using IdleTimeout = RelayIdleTimeout;

  // Starts relaying; `a_first` is sent to b before anything read from a.
  // `done` runs once, on the streams' executor, after both are closed.
  static std::shared_ptr<ByteRelay> start(std::unique_ptr<ByteStream> a, std::unique_ptr<ByteStream> b,
                                          std::string a_first, Finished done, IdleTimeout idle = {});
  // Closes both sides now (done still runs).
  void abort(const std::string& why);

  ByteRelay(std::unique_ptr<ByteStream> a, std::unique_ptr<ByteStream> b, Finished done);

 private:
  struct Direction;
  void pump(Direction& d);
  void write_chunk(Direction& d, std::size_t n);
  void ended(Direction& d);
  void finish_if_done();
  void watch_idle(std::chrono::steady_clock::duration wait);
  void stop_idle_timer();

  std::unique_ptr<ByteStream> a_, b_;
  Totals totals_;
  std::unique_ptr<Direction> forward_, backward_;  // a->b, b->a
  Finished done_;
  bool finished_ = false;
  // Idle timeout: the timer wakes at the earliest possible expiry and
  // re-arms for the rest, so moving bytes never touches it.
  std::optional<boost::asio::steady_timer> idle_timer_;
  std::chrono::milliseconds idle_after_{0};
  std::chrono::steady_clock::time_point last_activity_;
};

}  // namespace gondolin::egress
