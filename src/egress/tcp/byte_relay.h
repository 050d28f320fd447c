// Moves bytes both ways between two connections until both directions have
// ended, for mapped TCP and ingress. Each direction has one fixed buffer and
// reads only after the previous chunk is fully written, so a side that stops
// reading stops the other side from being read (back-pressure, never growth).
// An end of stream on one side becomes a half-close (FIN) on the other; an
// error on either side closes both at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "egress/byte_stream.h"

namespace gondolin::egress {

class ByteRelay : public std::enable_shared_from_this<ByteRelay> {
 public:
  static constexpr std::size_t kBufferSize = 64 * 1024;  // per direction

  struct Totals {
    std::uint64_t a_to_b = 0;
    std::uint64_t b_to_a = 0;
    std::string error;  // empty for an orderly close of both directions
  };
  using Finished = std::function<void(const Totals&)>;

  // Starts relaying; `a_first` is sent to b before anything read from a.
  // `done` runs once, on the streams' executor, after both are closed.
  static std::shared_ptr<ByteRelay> start(std::unique_ptr<ByteStream> a, std::unique_ptr<ByteStream> b,
                                          std::string a_first, Finished done);
  // Closes both sides now (done still runs).
  void abort(const std::string& why);

  ByteRelay(std::unique_ptr<ByteStream> a, std::unique_ptr<ByteStream> b, Finished done);

 private:
  struct Direction;
  void pump(Direction& d);
  void write_chunk(Direction& d, std::size_t n);
  void ended(Direction& d);
  void finish_if_done();

  std::unique_ptr<ByteStream> a_, b_;
  Totals totals_;
  std::unique_ptr<Direction> forward_, backward_;  // a->b, b->a
  Finished done_;
  bool finished_ = false;
};

}  // namespace gondolin::egress
