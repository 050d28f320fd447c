#include "vfs/vhost/state_transfer.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "util/no_sigpipe.h"

namespace gondolin::vfs::vhost {

void StateTransfer::start_save(UniqueFd pipe, std::string state) {
  finish();
  direction_ = Direction::Save;
  outcome_ = {};
  thread_ = std::thread([this, fd = std::move(pipe), bytes = std::move(state)]() mutable {
    // A front-end that closed its end gets EPIPE here, not our whole process a SIGPIPE.
    block_sigpipe_in_this_thread();
    std::size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        outcome_.error = std::string("writing the state: ") + (n < 0 ? std::strerror(errno) : "no progress");
        return;
      }
      done += static_cast<std::size_t>(n);
    }
    fd.reset();  // EOF: the front-end stops reading
  });
}

void StateTransfer::start_load(UniqueFd pipe, std::size_t max_bytes) {
  finish();
  direction_ = Direction::Load;
  outcome_ = {};
  thread_ = std::thread([this, fd = std::move(pipe), max_bytes] {
    char buffer[1 << 16];
    for (;;) {
      ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        outcome_.error = std::string("reading the state: ") + std::strerror(errno);
        return;
      }
      if (n == 0) return;
      if (outcome_.data.size() + static_cast<std::size_t>(n) > max_bytes) {
        outcome_.error = "the state is larger than " + std::to_string(max_bytes) + " bytes";
        outcome_.data.clear();
        return;  // closing our end makes the front-end's writes fail
      }
      outcome_.data.append(buffer, static_cast<std::size_t>(n));
    }
  });
}

StateTransfer::Outcome StateTransfer::finish() {
  if (!thread_.joinable()) return std::exchange(outcome_, {});
  thread_.join();
  return std::exchange(outcome_, {});
}

}  // namespace gondolin::vfs::vhost
