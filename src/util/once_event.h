#pragma once

#include <future>
#include <mutex>

namespace gondolin {

// Something that happens once (a process ended): set from any thread, any
// number of times (the first counts), and waited for from others.
class OnceEvent {
 public:
  void set() {
    std::call_once(set_once_, [this] { promise_.set_value(); });
  }
  // Ready once set(); copies may be waited on from any thread.
  std::shared_future<void> future() const { return future_; }

 private:
  std::once_flag set_once_;
  std::promise<void> promise_;
  std::shared_future<void> future_ = promise_.get_future().share();
};

}  // namespace gondolin
