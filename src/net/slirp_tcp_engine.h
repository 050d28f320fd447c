// libslirp as the TCP engine, and nothing else.
//
// Slirp runs restricted (it never opens an outbound socket of its own), with
// IPv4 only and its DHCP and DNS off; it only ever sees guest TCP frames the
// stack has already checked. For each destination the guest dials, the
// stack registers a forward with `expect()`: when the guest's handshake
// completes, slirp connects to our private unix listener, and `accept_new()`
// right after that `input()` yields the flow as an ordinary stream socket.
// Slirp's own sockets (its ends of those connections) are polled through an
// epoll set on the io thread; its timers are asio timers.
#pragma once

#include <sys/epoll.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/bytes.h"
#include "net/ip_address.h"
#include "util/unique_fd.h"

struct Slirp;

namespace gondolin::net {

class SlirpTcpEngine {
 public:
  using FrameSink = std::function<void(Bytes frame)>;
  // Forwards kept registered for reuse; beyond this the least recently used
  // idle one is dropped (libslirp 4.7 leaks a few bytes per removal, so
  // churning them for every flow would grow without bound).
  static constexpr std::size_t kForwardCacheSize = 256;

  SlirpTcpEngine(boost::asio::io_context& io, const NetLayout& layout, FrameSink to_guest);
  ~SlirpTcpEngine();
  SlirpTcpEngine(const SlirpTcpEngine&) = delete;
  SlirpTcpEngine& operator=(const SlirpTcpEngine&) = delete;

  // A handshake to dst:port is under way: make it end in our listener.
  // False if slirp refuses the forward (never for checked unicast addresses).
  bool expect(const Ipv4& dst, std::uint16_t port);
  // That handshake finished (accepted, reset or timed out).
  void settle(const Ipv4& dst, std::uint16_t port);

  // Ingress: lets the host open connections to `guest_port` inside the guest.
  // Slirp listens on a unix socket of ours for it (a host forward) and opens
  // a TCP connection to the guest for each connection made there; the host's
  // public listeners stay ours (src/egress/tcp/ingress_listeners.*). Throws
  // gondolin::Error (Io) if slirp refuses.
  void open_guest_port(std::uint16_t guest_port);
  // A new connection to an opened guest port (non-blocking, connected or
  // connecting), or nullopt with the reason in `error`.
  std::optional<UniqueFd> connect_guest_port(std::uint16_t guest_port, std::string& error);

  // One guest frame (Ethernet + IPv4 + TCP).
  void input(Bytes frame);
  // The connection slirp opened to our listener during the last input(), if any.
  std::optional<UniqueFd> accept_new();

  // Let slirp poll its sockets and run its timers soon (coalesced).
  void schedule_pump();
  // While the link to the guest is congested, slirp reads nothing from flows.
  void set_congested(bool congested);

  std::size_t forwards() const { return forwards_.size(); }

 private:
  struct Timer;
  struct Forward {
    int pending = 0;
    std::list<std::uint64_t>::iterator lru;
  };
  static std::uint64_t key(const Ipv4& dst, std::uint16_t port) { return (std::uint64_t{to_u32(dst)} << 16) | port; }

  void pump();
  void collect_revents();
  void arm_waits(std::uint32_t timeout_ms);
  void sync_epoll();
  void prune_forwards();

  friend struct SlirpCallbacks;  // libslirp's C callbacks (opaque = this)

  boost::asio::io_context& io_;
  NetLayout layout_;
  FrameSink to_guest_;
  std::filesystem::path dir_, socket_path_;
  UniqueFd listener_;
  UniqueFd epoll_fd_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> epoll_watch_;
  boost::asio::steady_timer poll_timer_;
  std::list<std::unique_ptr<Timer>> timers_;
  Slirp* slirp_ = nullptr;

  struct PollFd {
    int fd;
    std::uint32_t events;
  };
  std::vector<PollFd> poll_fds_;                       // from the last slirp_pollfds_fill
  std::vector<int> revents_;                           // per poll_fds_ index, for slirp_pollfds_poll
  std::vector<epoll_event> epoll_events_;              // one epoll_wait's results: sized to registered_
  std::unordered_map<int, std::uint32_t> ready_;       // fd -> ready events, rebuilt each pass
  std::unordered_map<int, std::uint32_t> registered_;  // fd -> events in the epoll set
  bool filled_ = false;
  bool pump_posted_ = false;
  bool epoll_waiting_ = false;
  bool congested_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  std::map<std::uint16_t, std::filesystem::path> guest_ports_;  // ingress: guest port -> slirp's unix listener
  std::unordered_map<std::uint64_t, Forward> forwards_;
  std::list<std::uint64_t> forward_lru_;  // most recently used first
};

}  // namespace gondolin::net
