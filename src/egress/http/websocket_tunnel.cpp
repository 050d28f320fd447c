#include "egress/http/websocket_tunnel.h"

namespace gondolin::egress {

void WebSocketTunnel::start(std::weak_ptr<void> owner, std::shared_ptr<void> pin, End guest, End upstream,
                            std::function<bool()> current, std::function<void()> closed) {
  owner_ = std::move(owner);
  pin_ = std::move(pin);
  guest_ = guest;
  upstream_ = upstream;
  current_ = std::move(current);
  closed_ = std::move(closed);
  pump(true);
  pump(false);
}

template <typename F>
auto WebSocketTunnel::guarded(F f) {
  return [this, owner = owner_.lock(), pin = pin_, f = std::move(f)](const boost::system::error_code& ec,
                                                                     std::size_t n) mutable {
    if (!owner || !current_()) return;
    if (ec) return closed_();
    f(n);
  };
}

void WebSocketTunnel::pump(bool guest_to_upstream) {
  End& from = guest_to_upstream ? guest_ : upstream_;
  End& to = guest_to_upstream ? upstream_ : guest_;
  if (!from.in->empty()) {
    std::string_view data = from.in->readable();
    to.stream->write({boost::asio::buffer(data.data(), data.size())},
                     guarded([this, &from, guest_to_upstream, n = data.size()](std::size_t) {
                       from.in->consume(n);
                       pump(guest_to_upstream);
                     }));
    return;
  }
  from.stream->read_some(from.in->prepare(), guarded([this, &from, guest_to_upstream](std::size_t n) {
                           from.in->commit(n);
                           pump(guest_to_upstream);
                         }));
}

}  // namespace gondolin::egress
