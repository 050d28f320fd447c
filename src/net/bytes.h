// Bounds-checked big-endian reading and writing of wire formats, and the
// result type of every parser in src/net (a value or a short reason).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <utility>
#include <variant>
#include <vector>

namespace gondolin::net {

using Bytes = std::span<const std::uint8_t>;

// A parser's outcome: the value, or a static string naming what was wrong.
template <typename T>
class Parsed {
 public:
  Parsed(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  static Parsed fail(const char* why) { return Parsed(Failure{why}); }
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const char* error() const { return ok() ? "" : std::get<1>(v_).why; }

 private:
  struct Failure {
    const char* why;
  };
  explicit Parsed(Failure f) : v_(f) {}
  std::variant<T, Failure> v_;
};

class ByteReader {
 public:
  explicit ByteReader(Bytes data) : data_(data) {}
  std::size_t offset() const { return off_; }
  std::size_t remaining() const { return data_.size() - off_; }
  bool u8(std::uint8_t& v) {
    if (remaining() < 1) return false;
    v = data_[off_++];
    return true;
  }
  bool u16(std::uint16_t& v) {
    if (remaining() < 2) return false;
    v = static_cast<std::uint16_t>((data_[off_] << 8) | data_[off_ + 1]);
    off_ += 2;
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (remaining() < 4) return false;
    v = (std::uint32_t{data_[off_]} << 24) | (std::uint32_t{data_[off_ + 1]} << 16) |
        (std::uint32_t{data_[off_ + 2]} << 8) | data_[off_ + 3];
    off_ += 4;
    return true;
  }
  bool take(std::size_t n, Bytes& out) {
    if (remaining() < n) return false;
    out = data_.subspan(off_, n);
    off_ += n;
    return true;
  }
  template <std::size_t N>
  bool array(std::array<std::uint8_t, N>& out) {
    if (remaining() < N) return false;
    std::memcpy(out.data(), data_.data() + off_, N);
    off_ += N;
    return true;
  }
  bool skip(std::size_t n) {
    if (remaining() < n) return false;
    off_ += n;
    return true;
  }

 private:
  Bytes data_;
  std::size_t off_ = 0;
};

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<std::uint8_t>& out) : out_(out) {}
  std::size_t size() const { return out_.size(); }
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    out_.push_back(static_cast<std::uint8_t>(v >> 8));
    out_.push_back(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v));
  }
  void bytes(Bytes b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void zeros(std::size_t n) { out_.insert(out_.end(), n, 0); }
  void put_u16_at(std::size_t offset, std::uint16_t v) {
    out_[offset] = static_cast<std::uint8_t>(v >> 8);
    out_[offset + 1] = static_cast<std::uint8_t>(v);
  }

 private:
  std::vector<std::uint8_t>& out_;
};

inline std::uint16_t load_u16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
inline std::uint32_t load_u32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

}  // namespace gondolin::net
