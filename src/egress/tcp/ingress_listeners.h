// Ingress (--listen): host TCP listeners whose connections are forwarded to
// ports inside the guest. The listening sockets are ours (bound before the VM
// boots, so a busy port is an error at once, and loopback unless the user gave
// an address); each accepted connection is relayed into the guest through a
// connection the network stack opens to the guest port. Every connection is
// logged (open, and close with the bytes each way); at most
// max_ingress_connections are open at once, more are closed at once.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "egress/egress_context.h"
#include "gondolin/net_policy.h"
#include "util/unique_fd.h"

namespace gondolin::egress {

// Opens a connection to a port inside the guest, or says why not.
using GuestPortDialer = std::function<std::optional<UniqueFd>(std::uint16_t guest_port, std::string& error)>;

class IngressListeners {
 public:
  // Binds and listens on every address now. Throws gondolin::Error (Io)
  // naming the address, e.g. when the port is in use.
  IngressListeners(std::shared_ptr<EgressContext> ctx, const std::vector<Ingress>& ingress);
  ~IngressListeners();
  IngressListeners(const IngressListeners&) = delete;
  IngressListeners& operator=(const IngressListeners&) = delete;

  // Starts accepting, on the io thread; `dial` reaches the guest.
  void start(GuestPortDialer dial);
  // The address each listener is bound to, in the order given.
  std::vector<boost::asio::ip::tcp::endpoint> local_endpoints() const;

 private:
  struct Listener;
  void accept_next(const std::shared_ptr<Listener>& l);
  void forward(const Listener& l, boost::asio::ip::tcp::socket client);

  std::shared_ptr<EgressContext> ctx_;
  std::vector<std::shared_ptr<Listener>> listeners_;
  GuestPortDialer dial_;
  std::shared_ptr<std::size_t> open_ = std::make_shared<std::size_t>(0);  // connections open right now
  std::uint64_t next_id_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace gondolin::egress
