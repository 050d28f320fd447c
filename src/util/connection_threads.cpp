#include "util/connection_threads.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "util/logging.h"

namespace gondolin {

ConnectionThreads::ConnectionThreads(UniqueFd listen_fd, unsigned max_connections, Serve serve, Admit admit)
    : listen_fd_(std::move(listen_fd)),
      max_connections_(max_connections),
      serve_(std::move(serve)),
      admit_(std::move(admit)) {
  acceptor_ = std::thread([this] { accept_loop(); });
}

void ConnectionThreads::stop() {
  if (stopping_.exchange(true)) return;
  ::shutdown(listen_fd_.get(), SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  std::list<Connection> connections;
  {
    std::lock_guard lock(mutex_);
    connections.swap(connections_);
  }
  for (auto& c : connections) ::shutdown(c.fd.get(), SHUT_RDWR);
  for (auto& c : connections)
    if (c.thread.joinable()) c.thread.join();
}

void ConnectionThreads::reap_finished() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (!it->done) {
      ++it;
      continue;
    }
    it->thread.join();
    it = connections_.erase(it);
  }
}

void ConnectionThreads::accept_loop() {
  while (!stopping_) {
    // A timeout now and then joins finished connections while none arrive.
    pollfd p{listen_fd_.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, 500);
    if (ready <= 0 || stopping_) {
      std::lock_guard lock(mutex_);
      reap_finished();
      continue;
    }
    UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
      return;  // shut down
    }
    if (admit_ && !admit_(fd.get())) continue;
    std::lock_guard lock(mutex_);
    reap_finished();
    if (connections_.size() >= max_connections_) {
      log().warn("{} connections open at once (the limit): closing a new one", max_connections_);
      continue;
    }
    Connection& c = connections_.emplace_back();
    c.fd = std::move(fd);
    c.thread = std::thread([this, &c] {
      serve_(c.fd.get());
      c.done = true;
    });
  }
}

}  // namespace gondolin
