// A bounded byte buffer: bytes arrive at the end, are consumed from the
// front. It never holds more than its capacity, which is how a flow applies
// back-pressure: when it is full, nobody reads from the peer until something
// is consumed.
//
// Memory follows use: nothing is allocated until the first read, the first
// allocation is kFirstAllocation bytes (never zero-filled, so untouched pages
// cost nothing), it grows fourfold only when unread bytes fill it, up to the
// capacity, and release() returns it while empty (an idle keep-alive flow
// then holds no buffer at all).
#pragma once

#include <boost/asio/buffer.hpp>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string_view>

namespace gondolin::egress {

class FlatBuffer {
 public:
  static constexpr std::size_t kFirstAllocation = 16 * 1024;

  explicit FlatBuffer(std::size_t capacity) : capacity_(capacity) {}

  std::string_view readable() const { return {data_.get() + begin_, end_ - begin_}; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  bool full() const { return begin_ == 0 && end_ == capacity_; }
  std::size_t allocated() const { return allocated_; }

  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Free space at the end, moving unread bytes to the front or growing
  // first if there is none. Empty only when full().
  boost::asio::mutable_buffer prepare() {
    if (end_ == allocated_ && begin_ > 0) {
      std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == allocated_ && allocated_ < capacity_) grow();
    return boost::asio::buffer(data_.get() + end_, allocated_ - end_);
  }
  void commit(std::size_t n) { end_ += n; }
  void clear() { begin_ = end_ = 0; }
  // Gives the storage back while nothing is unread.
  void release() {
    if (!empty()) return;
    data_.reset();
    allocated_ = 0;
  }
  // Appends bytes that were read elsewhere (a classifier's prefix); false if they do not fit.
  bool append(std::string_view bytes) {
    while (!bytes.empty()) {
      auto space = prepare();
      if (space.size() == 0) return false;
      const std::size_t n = std::min(bytes.size(), space.size());
      std::memcpy(space.data(), bytes.data(), n);
      commit(n);
      bytes.remove_prefix(n);
    }
    return true;
  }

 private:
  void grow() {
    const std::size_t size = std::min(capacity_, std::max(kFirstAllocation, allocated_ * 4));
    auto bigger = std::make_unique_for_overwrite<char[]>(size);
    if (end_ > begin_) std::memcpy(bigger.get() + begin_, data_.get() + begin_, end_ - begin_);
    data_ = std::move(bigger);
    allocated_ = size;
  }

  std::unique_ptr<char[]> data_;
  std::size_t allocated_ = 0;
  std::size_t capacity_;
  std::size_t begin_ = 0, end_ = 0;
};

}  // namespace gondolin::egress
