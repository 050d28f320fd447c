// After a 101 Switching Protocols: bytes flow both ways untouched until
// either side closes or fails, then `closed` runs once. Each direction is a
// read-then-write loop through the input buffer of its source (so bytes the
// parser had already buffered go first).
#pragma once

#include <functional>
#include <memory>

#include "egress/byte_stream.h"
#include "egress/http/flat_buffer.h"

namespace gondolin::egress {

class WebSocketTunnel {
 public:
  struct End {
    ByteStream* stream = nullptr;
    FlatBuffer* in = nullptr;  // bytes read from this end, not yet written to the other
  };
  // `owner` and `pin` are held by every pending completion (see BodyRelay);
  // `current` false drops a completion.
  void start(std::weak_ptr<void> owner, std::shared_ptr<void> pin, End guest, End upstream,
             std::function<bool()> current, std::function<void()> closed);

 private:
  void pump(bool guest_to_upstream);
  template <typename F>
  auto guarded(F f);

  std::weak_ptr<void> owner_;
  std::shared_ptr<void> pin_;
  End guest_, upstream_;
  std::function<bool()> current_;
  std::function<void()> closed_;
};

}  // namespace gondolin::egress
