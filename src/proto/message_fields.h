// Each control message lists its fields once. A message type declares
//
//   template <class Msg, class Fields> static void fields(Msg& m, Fields& f) {
//     f.u32(m.flags);
//     f.text(m.path, kMaxPathLength);  // NUL-free string, at most that long
//   }
//
// and optionally `bool valid() const` for what a field list cannot say
// (ranges, one field depending on another). GONDOLIN_WIRE_MESSAGE(Type) then
// gives it encode(), which walks the list with a FieldWriter, and decode(),
// which walks the same list with a FieldReader (every length bounded by the
// limit written next to the field) and fails unless the payload ends exactly
// there and valid() holds. The order in the list is the order on the wire.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/wire.h"

namespace gondolin::proto {

class FieldWriter {
 public:
  explicit FieldWriter(PayloadWriter& w) : w_(w) {}
  void u8(std::uint8_t v) { w_.u8(v); }
  void u16(std::uint16_t v) { w_.u16(v); }
  void u32(std::uint32_t v) { w_.u32(v); }
  void i32(std::int32_t v) { w_.i32(v); }
  void u64(std::uint64_t v) { w_.u64(v); }
  void i64(std::int64_t v) { w_.u64(static_cast<std::uint64_t>(v)); }
  template <class Enum>
  void enum_u8(Enum v) {
    w_.u8(static_cast<std::uint8_t>(v));
  }
  void text(const std::string& s, std::uint32_t /*max*/) { w_.bytes(s); }
  void blob(const std::string& s, std::uint32_t /*max*/) { w_.bytes(s); }
  void texts(const std::vector<std::string>& v, std::uint32_t /*max_count*/) { w_.strings(v); }

 private:
  PayloadWriter& w_;
};

class FieldReader {
 public:
  explicit FieldReader(PayloadReader& r) : r_(r) {}
  void u8(std::uint8_t& v) { v = r_.u8(); }
  void u16(std::uint16_t& v) { v = r_.u16(); }
  void u32(std::uint32_t& v) { v = r_.u32(); }
  void i32(std::int32_t& v) { v = r_.i32(); }
  void u64(std::uint64_t& v) { v = r_.u64(); }
  void i64(std::int64_t& v) { v = static_cast<std::int64_t>(r_.u64()); }
  // Any byte value is stored; the message's valid() says which are known.
  template <class Enum>
  void enum_u8(Enum& v) {
    v = static_cast<Enum>(r_.u8());
  }
  void text(std::string& s, std::uint32_t max) { s = r_.c_string(max); }  // no NUL bytes
  void blob(std::string& s, std::uint32_t max) { s = r_.bytes(max); }     // any bytes
  void texts(std::vector<std::string>& v, std::uint32_t max_count) { v = r_.c_strings(max_count); }

 private:
  PayloadReader& r_;
};

template <class Msg>
std::optional<Msg> decode_fields(PayloadReader& r) {
  Msg m;
  FieldReader f(r);
  Msg::fields(m, f);
  if (!r.at_end()) return std::nullopt;
  if constexpr (requires(const Msg& msg) { msg.valid(); }) {
    if (!m.valid()) return std::nullopt;
  }
  return m;
}

}  // namespace gondolin::proto

// encode() and decode() of a message with a fields() list (see above).
#define GONDOLIN_WIRE_MESSAGE(Type)                                        \
  void encode(::gondolin::proto::PayloadWriter& w) const {                 \
    ::gondolin::proto::FieldWriter f(w);                                   \
    fields(*this, f);                                                      \
  }                                                                        \
  static std::optional<Type> decode(::gondolin::proto::PayloadReader& r) { \
    return ::gondolin::proto::decode_fields<Type>(r);                      \
  }
