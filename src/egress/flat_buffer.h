// A fixed-capacity byte buffer: bytes arrive at the end, are consumed from
// the front. It never grows, which is how a flow applies back-pressure: when
// it is full, nobody reads from the peer until something is consumed.
#pragma once

#include <boost/asio/buffer.hpp>

#include <cstring>
#include <string_view>
#include <vector>

namespace gondolin::egress {

class FlatBuffer {
 public:
  explicit FlatBuffer(std::size_t capacity) : data_(capacity) {}

  std::string_view readable() const { return {data_.data() + begin_, end_ - begin_}; }
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  bool full() const { return begin_ == 0 && end_ == data_.size(); }

  void consume(std::size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Free space at the end, moving unread bytes to the front first if needed.
  boost::asio::mutable_buffer prepare() {
    if (end_ == data_.size() && begin_ > 0) {
      std::memmove(data_.data(), data_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    return boost::asio::buffer(data_.data() + end_, data_.size() - end_);
  }
  void commit(std::size_t n) { end_ += n; }
  void clear() { begin_ = end_ = 0; }
  // Appends bytes that were read elsewhere (a classifier's prefix); false if they do not fit.
  bool append(std::string_view bytes) {
    if (bytes.empty()) return true;
    auto space = prepare();
    if (bytes.size() > space.size()) return false;
    std::memcpy(space.data(), bytes.data(), bytes.size());
    commit(bytes.size());
    return true;
  }

 private:
  std::vector<char> data_;
  std::size_t begin_ = 0, end_ = 0;
};

}  // namespace gondolin::egress
