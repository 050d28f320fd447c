// A plain-HTTP server on 127.0.0.1 for hostile-guest tests: it records every
// byte any connection sends it and answers each connection once, with a fixed
// 200, after the first blank line. "Nothing reached the upstream" is then a
// fact the test can check, not an inference from the guest's exit code.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gondolin::testing {

class RecordingUpstream {
 public:
  RecordingUpstream() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~RecordingUpstream() {
    stop_ = true;
    thread_.join();
    for (auto& c : conns_) ::close(c.fd);
    ::close(listen_fd_);
  }
  RecordingUpstream(const RecordingUpstream&) = delete;
  RecordingUpstream& operator=(const RecordingUpstream&) = delete;

  std::uint16_t port() const { return port_; }
  int connections() const { return accepted_; }
  // Everything received so far, all connections concatenated in arrival order.
  std::string received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    received_.clear();
    accepted_ = 0;
  }

 private:
  struct Conn {
    int fd;
    std::string seen;
    bool answered = false;
  };

  // The first request on a connection is complete: head, then its body by
  // Content-Length, or a chunked body up to the last chunk.
  static bool request_complete(const std::string& seen) {
    const auto end = seen.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    std::string head = seen.substr(0, end + 2);
    for (auto& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const auto body = seen.size() - end - 4;
    if (auto cl = head.find("\r\ncontent-length:"); cl != std::string::npos)
      return body >= std::stoull(head.substr(cl + 18));
    if (head.find("\r\ntransfer-encoding:") != std::string::npos)
      return seen.find("\r\n0\r\n\r\n", end) != std::string::npos;
    return true;
  }

  void run() {
    while (!stop_) {
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      for (auto& c : conns_) fds.push_back({c.fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          conns_.push_back({fd, {}});
          ++accepted_;
        }
      }
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        Conn& c = conns_[i - 1];
        char buf[65536];
        ssize_t n = ::read(c.fd, buf, sizeof buf);
        if (n <= 0) {
          ::close(c.fd);
          c.fd = -1;
          continue;
        }
        c.seen.append(buf, static_cast<std::size_t>(n));
        {
          std::lock_guard lock(mutex_);
          received_.append(buf, static_cast<std::size_t>(n));
        }
        if (!c.answered && request_complete(c.seen)) {
          static constexpr char kReply[] =
              "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nrecorded\n";
          (void)!::write(c.fd, kReply, sizeof kReply - 1);
          c.answered = true;
        }
      }
      std::erase_if(conns_, [](const Conn& c) { return c.fd < 0; });
    }
  }

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::vector<Conn> conns_;
  std::mutex mutex_;
  std::string received_;
};

}  // namespace gondolin::testing
