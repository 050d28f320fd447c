// How one boot (or restore) ended: set once, by whichever of the io
// thread's handlers learns it first (the agent's Hello, QEMU's exit, the
// boot timer, a refused state), and awaited by the thread that started it.
// Invariants: the first finish() wins and later ones are ignored; wait()
// returns only once an outcome other than Pending is set, with the error
// that came with it for any outcome but Ready.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>

#include "gondolin/error.h"

namespace gondolin::vm {

enum class BootOutcome { Pending, Ready, Failed, TimedOut };

class BootResult {
 public:
  struct Ended {
    BootOutcome outcome;
    std::optional<Error> error;  // set unless outcome is Ready
  };

  // Any thread. Returns false if an outcome was set already.
  bool finish(BootOutcome outcome, std::optional<Error> error = std::nullopt) {
    std::lock_guard lock(mutex_);
    if (ended_.outcome != BootOutcome::Pending) return false;
    ended_ = {outcome, std::move(error)};
    changed_.notify_all();
    return true;
  }

  // Blocks until finish() has been called.
  Ended wait() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return ended_.outcome != BootOutcome::Pending; });
    return ended_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  Ended ended_{BootOutcome::Pending, std::nullopt};
};

}  // namespace gondolin::vm
