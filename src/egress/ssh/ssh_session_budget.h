// The cap on concurrent upstream SSH sessions, shared by all connection threads.
#pragma once

#include <atomic>
#include <optional>

namespace gondolin::egress {

// A counted place among at most `limit` concurrent upstream sessions.
class SessionBudget {
 public:
  class Slot {
   public:
    Slot() = default;
    explicit Slot(SessionBudget* owner) : owner_(owner) {}
    Slot(Slot&& o) noexcept : owner_(o.owner_) { o.owner_ = nullptr; }
    Slot& operator=(Slot&& o) noexcept {
      if (this != &o) {
        release();
        owner_ = o.owner_;
        o.owner_ = nullptr;
      }
      return *this;
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { release(); }

   private:
    void release() {
      if (owner_) owner_->in_use_.fetch_sub(1);
      owner_ = nullptr;
    }
    SessionBudget* owner_ = nullptr;
  };

  explicit SessionBudget(unsigned limit) : limit_(limit) {}
  unsigned limit() const { return limit_; }

  std::optional<Slot> try_acquire() {
    unsigned n = in_use_.load();
    do {
      if (n >= limit_) return std::nullopt;
    } while (!in_use_.compare_exchange_weak(n, n + 1));
    return Slot(this);
  }

 private:
  const unsigned limit_;
  std::atomic<unsigned> in_use_{0};
};

}  // namespace gondolin::egress
