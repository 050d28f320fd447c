// One HTTP message body, moved from the connection it arrives on to the one
// it leaves on: decoded from its framing (Content-Length, chunked, or until
// the source closes), re-framed for the sink (raw, or chunked), streamed
// through the source's fixed input buffer without copies. The request body
// (guest -> upstream) and the response body (upstream -> guest) are the same
// relay with different framing and different events.
//
// Invariants: at most one read and one write are in flight, never both (a
// relay reads only after its last write went out); input is consumed only
// after the sink took it; a completion that arrives after restart() or after
// events.current() turned false is dropped without touching anything
// (source_read still runs, so the owner knows no read is pending).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "egress/byte_stream.h"
#include "egress/http/chunked_decoder.h"
#include "egress/http/flat_buffer.h"
#include "egress/http/http_message.h"
#include "egress/policy/reflection_guard.h"

namespace gondolin::egress {

struct BodyRelayEvents {
  std::function<bool()> current;                              // false: the exchange moved on
  std::function<void()> wait_source;                          // before each read from the source
  std::function<void()> source_read;                          // a read came back (any result)
  std::function<void()> wait_sink;                            // before each write to the sink
  std::function<void()> sink_wrote;                           // the sink took a write
  std::function<void(const std::string& why)> source_failed;  // broke or closed mid-body
  std::function<void()> sink_failed;                          // stopped taking bytes
  std::function<void(const std::string& why)> bad_framing;    // invalid chunked coding
  std::function<void()> done;                                 // the whole body went out
};

struct BodyFramingPlan {
  BodyFraming in = BodyFraming::None;
  std::uint64_t length = 0;  // ContentLength
  bool chunked_out = false;  // re-encode as chunked for the sink
  // Rewrites the body on its way (the sink's framing must not be a length).
  std::shared_ptr<ReflectionGuard> guard;
};

class BodyRelay {
 public:
  // `owner` is held by every pending completion (the object that owns the
  // buffers and streams); `pin` too (the upstream connection in use).
  void start(std::weak_ptr<void> owner, std::shared_ptr<void> pin, FlatBuffer& in, ByteStream& source, ByteStream& sink,
             BodyFramingPlan plan, BodyRelayEvents events);
  // Drops pending completions (the exchange ended).
  void cancel();

 private:
  void pump();
  void read_source();
  void finish();  // the guard's rest, the terminator if any, then done
  // Body bytes to the sink, framed per plan_.chunked_out (see write()); false
  // if nothing needed writing (the guard held all of it back), the input
  // consumed already.
  bool write_data(std::string_view data, std::size_t consume, std::size_t body_bytes);
  // `data` as the sink's framing wants it (a chunk, or as is); the buffers
  // refer to `data` and chunk_line_.
  std::vector<boost::asio::const_buffer> framed(std::string_view data);
  // Writes `bufs`, then consumes `consume` input bytes; `body_bytes` of the
  // body left the source (ContentLength), `last` ends the body.
  void write(std::vector<boost::asio::const_buffer> bufs, std::size_t consume, std::size_t body_bytes, bool last);
  // A completion handler that runs `f(events, ec, n)` only while the owner
  // lives, this relay serves the same body and the exchange is current.
  template <typename F>
  auto guarded(F f);

  std::weak_ptr<void> owner_;
  std::shared_ptr<void> pin_;
  FlatBuffer* in_ = nullptr;
  ByteStream* source_ = nullptr;
  ByteStream* sink_ = nullptr;
  BodyFramingPlan plan_;
  // Shared with pending handlers: replacing it never destroys a callback
  // that is running.
  std::shared_ptr<const BodyRelayEvents> events_;
  std::uint64_t remaining_ = 0;
  ChunkedDecoder chunks_;
  std::string chunk_line_;
  std::string guarded_;  // the guard's output being written
  std::uint64_t generation_ = 0;
};

}  // namespace gondolin::egress
