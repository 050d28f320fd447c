#include "fuse_forwarder.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <unordered_set>
#include <vector>

#include "klog.h"
#include "proto/mount_messages.h"

namespace gondolin::agent {
namespace {

// Port reads stop at this size unless the reply in progress needs more, so
// a reply that starts mid-buffer never costs more than this to move to the front.
constexpr std::size_t kPortReadChunk = 64 * 1024;
// While the host is away (a snapshot being taken or restored) the port
// reports a hang-up; look for its return this often.
constexpr int kReconnectPollMs = 100;

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// The unique of a request the kernel waits a reply for (all but the forgets
// and interrupts), or nullopt.
std::optional<std::uint64_t> awaited_unique(const char* request, std::size_t len) {
  if (len < sizeof(fuse_in_header)) return std::nullopt;
  fuse_in_header h{};
  std::memcpy(&h, request, sizeof h);
  if (h.opcode == FUSE_FORGET || h.opcode == FUSE_BATCH_FORGET || h.opcode == FUSE_INTERRUPT) return std::nullopt;
  return h.unique;
}

void reply_error(int fuse_fd, std::uint64_t unique, int error) {
  fuse_out_header h{};
  h.len = sizeof h;
  h.error = -error;
  h.unique = unique;
  (void)::write(fuse_fd, &h, sizeof h);
}

// The host gave up on this mount (see kFuseNotifyMountFailed): every request
// still waiting and every later one is answered EIO here, until unmount.
int serve_failed_mount(int fuse_fd, std::vector<char>& request, std::unordered_set<std::uint64_t>& waiting) {
  klog("fuse forwarder: the host stopped this mount; its files now fail with EIO");
  for (std::uint64_t unique : waiting) reply_error(fuse_fd, unique, EIO);
  waiting.clear();
  ::fcntl(fuse_fd, F_SETFL, ::fcntl(fuse_fd, F_GETFL) & ~O_NONBLOCK);
  for (;;) {
    ssize_t r = ::read(fuse_fd, request.data(), request.size());
    if (r == 0 || (r < 0 && errno == ENODEV)) return 0;  // unmounted
    if (r < 0 && (errno == EINTR || errno == ENOENT || errno == EAGAIN)) continue;
    if (r < 0) return 1;
    if (auto unique = awaited_unique(request.data(), static_cast<std::size_t>(r))) reply_error(fuse_fd, *unique, EIO);
  }
}

// The forwarder between polls: one request from the kernel in flight to the
// port, replies from the port being reassembled for the kernel.
class Forwarder {
 public:
  Forwarder(int fuse_fd, int port_fd, std::size_t max_io)
      : fuse_fd_(fuse_fd),
        port_fd_(port_fd),
        // The kernel refuses reads into buffers smaller than a maximal request.
        request_(sizeof(fuse_in_header) + sizeof(fuse_write_in) + max_io + 4096),
        replies_(sizeof(fuse_out_header) + max_io + kPortReadChunk) {}

  int run() {
    set_nonblocking(fuse_fd_);
    set_nonblocking(port_fd_);
    for (;;) {
      pollfd p[2] = {{fuse_fd_, static_cast<short>(request_len_ == 0 ? POLLIN : 0), 0},
                     {port_fd_, static_cast<short>(host_away_ ? 0 : (POLLIN | (request_len_ ? POLLOUT : 0))), 0}};
      int n = ::poll(p, 2, host_away_ ? kReconnectPollMs : -1);
      if (n < 0 && errno != EINTR) {
        klog("fuse forwarder: poll: %s", std::strerror(errno));
        return 1;
      }
      watch_host(p[1].revents);
      if (auto done = take_request(p[0].revents)) return *done;
      send_request();
      if (!host_away_ && (p[1].revents & POLLIN))
        if (auto done = take_replies()) return *done;
    }
  }

 private:
  // While the host is away (a snapshot) the port reports a hang-up; a
  // partial reply from a host that left is never completed.
  void watch_host(short port_revents) {
    if (host_away_) {
      pollfd probe{port_fd_, POLLIN, 0};
      if (::poll(&probe, 1, 0) >= 0 && !(probe.revents & POLLHUP)) host_away_ = false;
    } else if (port_revents & (POLLHUP | POLLERR)) {
      host_away_ = true;
      have_ = 0;
    }
  }

  // Kernel -> request buffer. A value: the forwarder ends with it (unmounted).
  std::optional<int> take_request(short revents) {
    if (revents & POLLIN) {
      ssize_t r = ::read(fuse_fd_, request_.data(), request_.size());
      if (r > 0) {
        request_len_ = static_cast<std::size_t>(r);
        request_sent_ = 0;
        if (auto unique = awaited_unique(request_.data(), request_len_)) waiting_.insert(*unique);
      } else if (r < 0 && errno == ENODEV) {
        return 0;
      }
      // EAGAIN/EINTR: nothing; ENOENT: the request was interrupted meanwhile
    } else if (revents & (POLLERR | POLLHUP)) {
      return 0;
    }
    return std::nullopt;
  }

  // The port takes at most 32 KiB per write and gives at most one 4 KiB
  // buffer per read: keep going until it would block rather than paying a
  // poll() per chunk (syscalls are what bulk transfers cost under TCG).
  void send_request() {
    while (request_len_ && !host_away_) {
      ssize_t w = ::write(port_fd_, request_.data() + request_sent_, request_len_ - request_sent_);
      if (w <= 0) break;
      request_sent_ += static_cast<std::size_t>(w);
      if (request_sent_ == request_len_) request_len_ = 0;
    }
  }

  // Port -> replies buffer (no further than the reply in progress needs, or
  // a chunk), then every whole reply to the kernel.
  std::optional<int> take_replies() {
    std::size_t want = kPortReadChunk;
    if (have_ >= sizeof(fuse_out_header)) {
      std::uint32_t len = 0;
      std::memcpy(&len, replies_.data(), sizeof len);
      if (len > have_) want = std::max<std::size_t>(want, len - have_);
    }
    want = std::min(want, replies_.size() - have_);
    for (std::size_t got = 0; got < want;) {
      ssize_t r = ::read(port_fd_, replies_.data() + have_, want - got);
      if (r == 0) {
        host_away_ = true;
        have_ = 0;
        return std::nullopt;
      }
      if (r < 0) break;  // EAGAIN: drained for now
      have_ += static_cast<std::size_t>(r);
      got += static_cast<std::size_t>(r);
    }
    return deliver_replies();
  }

  std::optional<int> deliver_replies() {
    std::size_t pos = 0;
    while (have_ - pos >= sizeof(fuse_out_header)) {
      std::uint32_t len = 0;
      std::memcpy(&len, replies_.data() + pos, sizeof len);
      if (len < sizeof(fuse_out_header) || len > replies_.size() - kPortReadChunk) {
        klog("fuse forwarder: corrupt reply stream from the host (length %u)", len);
        return 1;
      }
      if (have_ - pos < len) break;
      fuse_out_header reply{};
      std::memcpy(&reply, replies_.data() + pos, sizeof reply);
      if (reply.unique == 0 && reply.error == proto::kFuseNotifyMountFailed) {
        ::close(port_fd_);
        return serve_failed_mount(fuse_fd_, request_, waiting_);
      }
      waiting_.erase(reply.unique);
      // ENOENT: the request was aborted; anything else is the host's mistake
      // about one reply, which the kernel has already refused on its own.
      if (::write(fuse_fd_, replies_.data() + pos, len) < 0 && errno == ENODEV) return 0;
      pos += len;
    }
    if (pos > 0) {
      std::memmove(replies_.data(), replies_.data() + pos, have_ - pos);
      have_ -= pos;
    }
    return std::nullopt;
  }

  const int fuse_fd_, port_fd_;
  std::vector<char> request_;
  std::size_t request_len_ = 0, request_sent_ = 0;
  std::vector<char> replies_;
  std::size_t have_ = 0;
  bool host_away_ = false;
  std::unordered_set<std::uint64_t> waiting_;  // uniques sent to the host, not yet answered
};

}  // namespace

int run_fuse_forwarder(int fuse_fd, int port_fd, std::size_t max_io) {
  return Forwarder(fuse_fd, port_fd, max_io).run();
}

}  // namespace gondolin::agent
