// Lets another thread end a connection thread that may be blocked in libssh:
// it keeps duplicates of the thread's sockets and shuts them all down, which
// wakes any blocking read, write or poll on them. Holding the duplicates
// (not the numbers) means a closed-and-reused descriptor is never touched.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <mutex>

#include "util/unique_fd.h"

namespace gondolin::egress {

class SocketAbortSwitch {
 public:
  class Watch {
   public:
    Watch() = default;
    Watch(SocketAbortSwitch* owner, std::uint64_t id) : owner_(owner), id_(id) {}
    Watch(Watch&& o) noexcept : owner_(o.owner_), id_(o.id_) { o.owner_ = nullptr; }
    Watch& operator=(Watch&& o) noexcept {
      if (this != &o) {
        release();
        owner_ = o.owner_;
        id_ = o.id_;
        o.owner_ = nullptr;
      }
      return *this;
    }
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    ~Watch() { release(); }

   private:
    void release() {
      if (owner_) owner_->forget(id_);
      owner_ = nullptr;
    }
    SocketAbortSwitch* owner_ = nullptr;
    std::uint64_t id_ = 0;
  };

  // Watches `fd` until the returned Watch is destroyed. If the switch was
  // already thrown, the socket is shut down at once.
  Watch watch(int fd) {
    std::lock_guard lock(mutex_);
    UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (aborted_ && dup) ::shutdown(dup.get(), SHUT_RDWR);
    std::uint64_t id = next_id_++;
    fds_.emplace(id, std::move(dup));
    return Watch(this, id);
  }

  void abort() {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    for (auto& [id, fd] : fds_)
      if (fd) ::shutdown(fd.get(), SHUT_RDWR);
  }

  bool aborted() const {
    std::lock_guard lock(mutex_);
    return aborted_;
  }

 private:
  void forget(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    fds_.erase(id);
  }

  mutable std::mutex mutex_;
  bool aborted_ = false;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, UniqueFd> fds_;
};

}  // namespace gondolin::egress
