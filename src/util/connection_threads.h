// Serves each connection a listening socket accepts on a thread of its own:
// one accept thread, one thread per connection, finished ones joined as new
// ones arrive. For servers whose connections block (the session socket,
// host -> guest SSH), where a thread each keeps the code straight and the
// numbers stay small.
//
// Invariants: at most `max_connections` are served at once (more are closed
// at accept); each connection's fd stays open until its serve() returned;
// stop() (and the destructor) stops accepting, shuts every open connection's
// socket down so blocked reads and writes return, and joins every thread.
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

#include "util/unique_fd.h"

namespace gondolin {

class ConnectionThreads {
 public:
  using Serve = std::function<void(int fd)>;  // on the connection's thread; the fd is borrowed
  using Admit = std::function<bool(int fd)>;  // on the accept thread; false closes it

  ConnectionThreads(UniqueFd listen_fd, unsigned max_connections, Serve serve, Admit admit = {});
  ~ConnectionThreads() { stop(); }
  ConnectionThreads(const ConnectionThreads&) = delete;
  ConnectionThreads& operator=(const ConnectionThreads&) = delete;

  void stop();

 private:
  struct Connection {
    UniqueFd fd;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void accept_loop();
  void reap_finished();  // with mutex_ held

  UniqueFd listen_fd_;
  unsigned max_connections_;
  Serve serve_;
  Admit admit_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::list<Connection> connections_;
  std::thread acceptor_;
};

}  // namespace gondolin
