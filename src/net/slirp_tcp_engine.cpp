#include "net/slirp_tcp_engine.h"

#include <netinet/in.h>
#include <slirp/libslirp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "gondolin/error.h"
#include "net/arp.h"
#include "util/logging.h"
#include "util/paths.h"

namespace gondolin::net {

namespace asio = boost::asio;

struct SlirpTcpEngine::Timer {
  explicit Timer(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;
  SlirpTimerCb cb = nullptr;  // timer_new style
  SlirpTimerId id = SLIRP_TIMER_RA;
  bool opaque_style = false;
  void* cb_opaque = nullptr;
};

namespace {

in_addr to_in_addr(const Ipv4& a) {
  in_addr r{};
  std::memcpy(&r.s_addr, a.data(), 4);
  return r;
}

std::uint32_t to_epoll(int slirp_events) {
  std::uint32_t e = 0;
  if (slirp_events & SLIRP_POLL_IN) e |= EPOLLIN;
  if (slirp_events & SLIRP_POLL_OUT) e |= EPOLLOUT;
  if (slirp_events & SLIRP_POLL_PRI) e |= EPOLLPRI;
  return e;  // ERR and HUP are always reported
}

int from_epoll(std::uint32_t e) {
  int r = 0;
  if (e & EPOLLIN) r |= SLIRP_POLL_IN;
  if (e & EPOLLOUT) r |= SLIRP_POLL_OUT;
  if (e & EPOLLPRI) r |= SLIRP_POLL_PRI;
  if (e & EPOLLERR) r |= SLIRP_POLL_ERR;
  if (e & EPOLLHUP) r |= SLIRP_POLL_HUP;
  return r;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct SlirpCallbacks {
  static SlirpTcpEngine& self(void* opaque) { return *static_cast<SlirpTcpEngine*>(opaque); }

  static ssize_t send_packet(const void* buf, size_t len, void* opaque) {
    self(opaque).to_guest_(Bytes(static_cast<const std::uint8_t*>(buf), len));
    return static_cast<ssize_t>(len);
  }
  static void guest_error(const char* msg, void*) { log().debug("net: slirp: {}", msg); }
  static int64_t clock_get_ns(void*) { return now_ns(); }

  static void* add_timer(SlirpTcpEngine& e, std::unique_ptr<SlirpTcpEngine::Timer> t) {
    void* handle = t.get();
    e.timers_.push_back(std::move(t));
    return handle;
  }
  static void* timer_new(SlirpTimerCb cb, void* cb_opaque, void* opaque) {
    auto t = std::make_unique<SlirpTcpEngine::Timer>(self(opaque).io_);
    t->cb = cb;
    t->cb_opaque = cb_opaque;
    return add_timer(self(opaque), std::move(t));
  }
  static void* timer_new_opaque(SlirpTimerId id, void* cb_opaque, void* opaque) {
    auto t = std::make_unique<SlirpTcpEngine::Timer>(self(opaque).io_);
    t->opaque_style = true;
    t->id = id;
    t->cb_opaque = cb_opaque;
    return add_timer(self(opaque), std::move(t));
  }
  static void timer_free(void* timer, void* opaque) {
    auto& timers = self(opaque).timers_;
    timers.remove_if([timer](const auto& t) { return t.get() == timer; });
  }
  static void timer_mod(void* timer, int64_t expire_ms, void* opaque) {
    SlirpTcpEngine& e = self(opaque);
    auto* t = static_cast<SlirpTcpEngine::Timer*>(timer);
    const std::int64_t delay_ms = std::max<std::int64_t>(0, expire_ms - now_ns() / 1000000);
    t->timer.expires_after(std::chrono::milliseconds(delay_ms));
    t->timer.async_wait([&e, t, alive = std::weak_ptr<bool>(e.alive_)](const boost::system::error_code& ec) {
      if (ec || alive.expired()) return;
      if (t->opaque_style)
        slirp_handle_timer(e.slirp_, t->id, t->cb_opaque);
      else if (t->cb)
        t->cb(t->cb_opaque);
      e.schedule_pump();
    });
  }
  static void register_poll_fd(int, void*) {}  // the epoll set follows slirp_pollfds_fill
  static void unregister_poll_fd(int fd, void* opaque) {
    SlirpTcpEngine& e = self(opaque);
    if (e.registered_.erase(fd)) ::epoll_ctl(e.epoll_fd_.get(), EPOLL_CTL_DEL, fd, nullptr);
  }
  static void notify(void* opaque) { self(opaque).schedule_pump(); }

  static int add_poll(int fd, int events, void* opaque) {
    auto& fds = self(opaque).poll_fds_;
    fds.push_back({fd, to_epoll(events)});
    return static_cast<int>(fds.size() - 1);
  }
  static int get_revents(int idx, void* opaque) {
    auto& r = self(opaque).revents_;
    return idx >= 0 && static_cast<std::size_t>(idx) < r.size() ? r[static_cast<std::size_t>(idx)] : 0;
  }
};

namespace {

const SlirpCb kCallbacks = [] {
  SlirpCb cb{};
  cb.send_packet = SlirpCallbacks::send_packet;
  cb.guest_error = SlirpCallbacks::guest_error;
  cb.clock_get_ns = SlirpCallbacks::clock_get_ns;
  cb.timer_new = SlirpCallbacks::timer_new;
  cb.timer_free = SlirpCallbacks::timer_free;
  cb.timer_mod = SlirpCallbacks::timer_mod;
  cb.register_poll_fd = SlirpCallbacks::register_poll_fd;
  cb.unregister_poll_fd = SlirpCallbacks::unregister_poll_fd;
  cb.notify = SlirpCallbacks::notify;
  cb.timer_new_opaque = SlirpCallbacks::timer_new_opaque;
  return cb;
}();

}  // namespace

SlirpTcpEngine::SlirpTcpEngine(asio::io_context& io, const NetLayout& layout, FrameSink to_guest)
    : io_(io), layout_(layout), to_guest_(std::move(to_guest)), poll_timer_(io) {
  // The listener slirp connects to for every flow, in a private directory.
  dir_ = paths::make_private_temp_dir("gondolin-net");
  socket_path_ = dir_ / "flows.sock";
  listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  const std::string path = socket_path_.string();
  if (!listener_ || path.size() >= sizeof sa.sun_path)
    throw Error(ErrorKind::Io, "cannot create the network flow socket");
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(listener_.get(), 64) != 0)
    throw Error(ErrorKind::Io, "cannot listen on " + path + ": " + std::strerror(errno));

  epoll_fd_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_fd_) throw Error(ErrorKind::Io, std::string("epoll_create1: ") + std::strerror(errno));
  epoll_watch_ = std::make_unique<asio::posix::stream_descriptor>(io_, ::dup(epoll_fd_.get()));

  SlirpConfig cfg{};
  cfg.version = 4;
  cfg.restricted = 1;  // no outbound sockets: only our forwards
  cfg.in_enabled = true;
  // Every destination counts as "inside" the virtual network, which is what
  // lets a forward match any address the guest dials.
  cfg.vnetwork = to_in_addr(kIpv4Any);
  cfg.vnetmask = to_in_addr(kIpv4Any);
  cfg.vhost = to_in_addr(layout_.gateway);
  cfg.in6_enabled = false;
  cfg.vdhcp_start = to_in_addr(layout_.guest);
  cfg.vnameserver = to_in_addr(layout_.gateway);
  cfg.if_mtu = layout_.mtu;
  cfg.if_mru = layout_.mtu;
  cfg.disable_host_loopback = true;
  cfg.enable_emu = false;
  cfg.disable_dns = true;
  cfg.disable_dhcp = true;
  slirp_ = slirp_new(&cfg, &kCallbacks, this);
  if (!slirp_) throw Error(ErrorKind::Internal, "libslirp failed to start");

  // Slirp learns the guest's MAC only from ARP, which the stack answers
  // itself; a gratuitous announcement on the guest's behalf fills its table.
  ArpPacket announce{kArpRequest, layout_.guest_mac, layout_.guest, Mac{}, layout_.guest};
  auto frame = build_arp_frame(kMacBroadcast, announce);
  slirp_input(slirp_, frame.data(), static_cast<int>(frame.size()));
  schedule_pump();
}

SlirpTcpEngine::~SlirpTcpEngine() {
  *alive_ = false;
  alive_.reset();
  // slirp_cleanup closes its sockets through our callbacks: run it first.
  if (slirp_) slirp_cleanup(slirp_);
  slirp_ = nullptr;
  timers_.clear();
  boost::system::error_code ignored;
  poll_timer_.cancel();
  if (epoll_watch_) epoll_watch_->close(ignored);
  listener_.reset();
  std::error_code fs_ignored;
  std::filesystem::remove_all(dir_, fs_ignored);
}

bool SlirpTcpEngine::expect(const Ipv4& dst, std::uint16_t port) {
  const std::uint64_t k = key(dst, port);
  auto it = forwards_.find(k);
  if (it == forwards_.end()) {
    in_addr addr = to_in_addr(dst);
    if (slirp_add_unix(slirp_, socket_path_.c_str(), &addr, port) != 0) return false;
    forward_lru_.push_front(k);
    it = forwards_.emplace(k, Forward{0, forward_lru_.begin()}).first;
    prune_forwards();
  } else {
    forward_lru_.splice(forward_lru_.begin(), forward_lru_, it->second.lru);
  }
  ++it->second.pending;
  return true;
}

void SlirpTcpEngine::settle(const Ipv4& dst, std::uint16_t port) {
  auto it = forwards_.find(key(dst, port));
  if (it != forwards_.end() && it->second.pending > 0) --it->second.pending;
  prune_forwards();
}

void SlirpTcpEngine::prune_forwards() {
  // Oldest idle forwards go first; ones with a handshake in flight stay.
  for (auto it = forward_lru_.end(); forwards_.size() > kForwardCacheSize && it != forward_lru_.begin();) {
    --it;
    auto f = forwards_.find(*it);
    if (f->second.pending > 0) continue;
    const std::uint64_t k = *it;
    in_addr addr{};
    const Ipv4 dst = from_u32(static_cast<std::uint32_t>(k >> 16));
    addr = to_in_addr(dst);
    slirp_remove_guestfwd(slirp_, addr, static_cast<int>(k & 0xffff));
    forwards_.erase(f);
    it = forward_lru_.erase(it);
  }
}

namespace {

bool fill_unix_address(const std::filesystem::path& path, sockaddr_un& sa) {
  const std::string text = path.string();
  if (text.size() >= sizeof sa.sun_path) return false;
  sa = sockaddr_un{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, text.c_str(), text.size() + 1);
  return true;
}

}  // namespace

void SlirpTcpEngine::open_guest_port(std::uint16_t guest_port) {
  if (guest_ports_.count(guest_port)) return;
  const auto path = dir_ / ("in-" + std::to_string(guest_port) + ".sock");
  sockaddr_un host{};
  if (!fill_unix_address(path, host)) throw Error(ErrorKind::Io, "ingress socket path too long: " + path.string());
  sockaddr_in guest{};
  guest.sin_family = AF_INET;
  guest.sin_addr = to_in_addr(layout_.guest);
  guest.sin_port = htons(guest_port);
  if (slirp_add_hostxfwd(slirp_, reinterpret_cast<const sockaddr*>(&host), sizeof host,
                         reinterpret_cast<const sockaddr*>(&guest), sizeof guest, 0) != 0)
    throw Error(ErrorKind::Io, "libslirp cannot forward to guest port " + std::to_string(guest_port));
  guest_ports_.emplace(guest_port, path);
  schedule_pump();
}

std::optional<UniqueFd> SlirpTcpEngine::connect_guest_port(std::uint16_t guest_port, std::string& error) {
  auto it = guest_ports_.find(guest_port);
  if (it == guest_ports_.end()) {
    error = "guest port " + std::to_string(guest_port) + " is not forwarded";
    return std::nullopt;
  }
  sockaddr_un sa{};
  fill_unix_address(it->second, sa);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    // EAGAIN: slirp's backlog is full; the client may try again.
    error = std::string("cannot reach the guest port through libslirp: ") + std::strerror(errno);
    return std::nullopt;
  }
  schedule_pump();
  return fd;
}

void SlirpTcpEngine::input(Bytes frame) {
  slirp_input(slirp_, frame.data(), static_cast<int>(frame.size()));
  schedule_pump();
}

std::optional<UniqueFd> SlirpTcpEngine::accept_new() {
  for (;;) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return std::nullopt;
    // Only slirp, in this very process, may hand us flows.
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid == ::getpid()) return fd;
    log().warn("net: a foreign process (pid {}) connected to the flow socket; closed", cred.pid);
  }
}

void SlirpTcpEngine::schedule_pump() {
  if (pump_posted_ || !slirp_) return;
  pump_posted_ = true;
  asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    pump_posted_ = false;
    pump();
  });
}

void SlirpTcpEngine::set_congested(bool congested) {
  if (congested_ == congested) return;
  congested_ = congested;
  if (!congested_) schedule_pump();
}

void SlirpTcpEngine::pump() {
  if (filled_) collect_revents();
  poll_fds_.clear();
  std::uint32_t timeout = 1000;
  slirp_pollfds_fill(slirp_, &timeout, SlirpCallbacks::add_poll, this);
  filled_ = true;
  sync_epoll();
  arm_waits(timeout);
}

// Readiness of the descriptors slirp asked about in the last fill, then
// slirp's turn to act on it. The set is level-triggered, so one epoll_wait
// with room for every registered descriptor sees each ready one exactly
// once: a pass is bounded by the set's size, never by how many stay ready
// (asking again before slirp has acted would return the same ones forever).
void SlirpTcpEngine::collect_revents() {
  epoll_events_.resize(std::max<std::size_t>(registered_.size(), 1));
  const int n = ::epoll_wait(epoll_fd_.get(), epoll_events_.data(), static_cast<int>(epoll_events_.size()), 0);
  ready_.clear();
  for (int i = 0; i < n; ++i) {
    const epoll_event e = epoll_events_[static_cast<std::size_t>(i)];
    const int fd = e.data.fd;
    ready_[fd] = e.events;
  }
  revents_.assign(poll_fds_.size(), 0);
  for (std::size_t i = 0; i < poll_fds_.size(); ++i) {
    auto it = ready_.find(poll_fds_[i].fd);
    if (it == ready_.end()) continue;
    std::uint32_t r = it->second & (poll_fds_[i].events | EPOLLERR | EPOLLHUP);
    // A congested link to the guest: leave flow data in the sockets.
    if (congested_) r &= ~static_cast<std::uint32_t>(EPOLLIN | EPOLLHUP);
    revents_[i] = from_epoll(r);
  }
  slirp_pollfds_poll(slirp_, 0, SlirpCallbacks::get_revents, this);
}

void SlirpTcpEngine::sync_epoll() {
  std::unordered_map<int, std::uint32_t> wanted;
  for (const auto& p : poll_fds_) {
    std::uint32_t ev = p.events;
    // Held back: not even hang-ups (always reported) may wake us for these.
    if (congested_) ev &= ~static_cast<std::uint32_t>(EPOLLIN | EPOLLPRI);
    if (ev != 0) wanted[p.fd] |= ev;
  }
  for (auto it = registered_.begin(); it != registered_.end();) {
    if (!wanted.count(it->first)) {
      ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, it->first, nullptr);
      it = registered_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [fd, ev] : wanted) {
    auto it = registered_.find(fd);
    if (it != registered_.end() && it->second == ev) continue;
    epoll_event e{};
    e.events = ev;
    e.data.fd = fd;
    if (it != registered_.end()) {
      // The descriptor number may have been closed and reused since.
      if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, fd, &e) != 0 && errno == ENOENT)
        ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &e);
    } else if (::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &e) != 0 && errno == EEXIST) {
      ::epoll_ctl(epoll_fd_.get(), EPOLL_CTL_MOD, fd, &e);
    }
    registered_[fd] = ev;
  }
}

void SlirpTcpEngine::arm_waits(std::uint32_t timeout_ms) {
  if (!epoll_waiting_ && !registered_.empty()) {
    epoll_waiting_ = true;
    epoll_watch_->async_wait(asio::posix::stream_descriptor::wait_read,
                             [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
                               if (alive.expired()) return;
                               epoll_waiting_ = false;
                               if (!ec) schedule_pump();
                             });
  }
  poll_timer_.expires_after(std::chrono::milliseconds(timeout_ms));
  poll_timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
    if (!ec && !alive.expired()) schedule_pump();
  });
}

}  // namespace gondolin::net
