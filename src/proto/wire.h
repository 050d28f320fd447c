// Framing of the control channel between the host and the guest agent: the
// frame header, payload encoding and a stream decoder. The messages are in
// control_protocol.h (exec), file_messages.h, mount_messages.h and
// session_messages.h.
//
// Shared verbatim by both ends; header-only and free of dependencies beyond the
// standard library so the static guest agent can include it.
//
// A frame is a fixed 12-byte little-endian header followed by a payload:
//
//   u32 payload_length   bytes after the header, at most kMaxPayload
//   u8  version          kProtocolVersion; any other value is a protocol error
//   u8  type             FrameType
//   u16 reserved         zero
//   u32 stream_id        exec id (0 for channel-wide frames)
//
// Payload fields are encoded with PayloadWriter and decoded with PayloadReader,
// which refuses to read past the end and bounds every string and list.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/protocol_version.h"

namespace gondolin::proto {

inline constexpr std::size_t kHeaderSize = 12;
// Large enough for one exec request with a big environment, small enough that
// a lying guest cannot make the host allocate more than this per frame.
inline constexpr std::uint32_t kMaxPayload = 1u << 20;
// Data frames carry at most this much, so one stream cannot monopolise the link.
inline constexpr std::uint32_t kMaxDataChunk = 64u * 1024;
// Each direction of each exec starts with this many bytes of credit. A sender
// never has more than this in flight; the receiver returns credit as it consumes.
inline constexpr std::uint32_t kInitialWindow = 256u * 1024;
inline constexpr std::uint32_t kMaxArgs = 4096;
inline constexpr std::uint32_t kMaxEnv = 4096;
inline constexpr std::uint32_t kMaxStringLength = 256u * 1024;
inline constexpr char kControlPortName[] = "gondolin.control";

enum class FrameType : std::uint8_t {
  Hello = 1,        // guest -> host, stream 0: agent is ready
  Config = 2,       // host -> guest, stream 0: clock, entropy, hostname
  ExecStart = 3,    // host -> guest: start a process under stream_id
  ExecStarted = 4,  // guest -> host: the process runs (pid)
  Stdin = 5,        // host -> guest: bytes for the process's stdin
  StdinEof = 6,     // host -> guest: close the process's stdin
  Stdout = 7,       // guest -> host
  Stderr = 8,       // guest -> host
  Credit = 9,       // both ways: receiver consumed N bytes of this stream
  Resize = 10,      // host -> guest: pty window size
  Signal = 11,      // host -> guest: deliver a signal to the process group
  Exit = 12,        // guest -> host: process finished and its output drained
  Error = 13,       // guest -> host: request failed (stream 0: channel-wide)
  Shutdown = 14,    // host -> guest: sync and power off

  // 20-29: guest file operations (host-side file API, setup files)
  FileOp = 20,      // host -> guest: one operation on a guest path
  FileResult = 21,  // guest -> host: its outcome

  // 30-39: network setup; 40-49: filesystem mounts.
  // Each range belongs to one subsystem so they can grow independently.
  MountFs = 40,      // host -> guest: mount a FUSE file system served over a virtio-serial port
  MountResult = 41,  // guest -> host: its outcome

  // 50-59: sessions and snapshots.
  SnapshotPrepare = 50,      // host -> guest: finish the frame in flight, then stay silent
  SnapshotReady = 51,        // guest -> host: last frame before the snapshot
  SnapshotAbort = 52,        // host -> guest: no snapshot after all; carry on
  Resume = 53,               // host -> guest (new host): drop old exec streams, say Hello again
  SessionSnapshot = 56,      // session client -> owner: save and stop this session
  SessionSnapshotDone = 57,  // owner -> session client: snapshot id and directory
  AttachExit = 58,           // owner -> attach client: the attached command's full exit status
  SessionPolicy = 59,        // session client -> owner: show or change the HTTP policy
  SessionPolicyState = 60,   // owner -> session client: the policy as it stands
  SessionSsh = 61,           // session client -> owner: enable host -> guest SSH (no payload)
  SessionSshAccess = 62,     // owner -> session client: how to connect
};

inline constexpr bool is_known_frame_type(std::uint8_t t) {
  return (t >= static_cast<std::uint8_t>(FrameType::Hello) && t <= static_cast<std::uint8_t>(FrameType::Shutdown)) ||
         t == static_cast<std::uint8_t>(FrameType::FileOp) || t == static_cast<std::uint8_t>(FrameType::FileResult) ||
         t == static_cast<std::uint8_t>(FrameType::MountFs) || t == static_cast<std::uint8_t>(FrameType::MountResult) ||
         (t >= static_cast<std::uint8_t>(FrameType::SnapshotPrepare) &&
          t <= static_cast<std::uint8_t>(FrameType::Resume)) ||
         (t >= static_cast<std::uint8_t>(FrameType::SessionSnapshot) &&
          t <= static_cast<std::uint8_t>(FrameType::SessionSshAccess));
}

struct FrameHeader {
  std::uint32_t payload_length = 0;
  std::uint8_t version = kProtocolVersion;
  FrameType type = FrameType::Hello;
  std::uint32_t stream_id = 0;
};

namespace detail {
inline void put_u16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
inline void put_u32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline std::uint16_t get_u16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
inline std::uint32_t get_u32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
}  // namespace detail

inline std::array<std::uint8_t, kHeaderSize> encode_header(const FrameHeader& h) {
  std::array<std::uint8_t, kHeaderSize> out{};
  detail::put_u32(out.data(), h.payload_length);
  out[4] = h.version;
  out[5] = static_cast<std::uint8_t>(h.type);
  detail::put_u16(out.data() + 6, 0);
  detail::put_u32(out.data() + 8, h.stream_id);
  return out;
}

enum class HeaderError { None, BadVersion, BadType, BadReserved, TooLarge };

inline const char* describe(HeaderError e) {
  switch (e) {
    case HeaderError::None: return "ok";
    case HeaderError::BadVersion: return "unsupported protocol version";
    case HeaderError::BadType: return "unknown frame type";
    case HeaderError::BadReserved: return "reserved header bits set";
    case HeaderError::TooLarge: return "frame larger than the protocol allows";
  }
  return "invalid header";
}

// Decodes and validates a header; `in` must hold kHeaderSize bytes.
inline HeaderError decode_header(const std::uint8_t* in, FrameHeader& out) {
  out.payload_length = detail::get_u32(in);
  out.version = in[4];
  out.stream_id = detail::get_u32(in + 8);
  if (out.version != kProtocolVersion) return HeaderError::BadVersion;
  if (!is_known_frame_type(in[5])) return HeaderError::BadType;
  out.type = static_cast<FrameType>(in[5]);
  if (detail::get_u16(in + 6) != 0) return HeaderError::BadReserved;
  if (out.payload_length > kMaxPayload) return HeaderError::TooLarge;
  return HeaderError::None;
}

class PayloadWriter {
 public:
  void u8(std::uint8_t v) { buf_.push_back(v); }
  void u16(std::uint16_t v) {
    std::uint8_t b[2];
    detail::put_u16(b, v);
    buf_.insert(buf_.end(), b, b + 2);
  }
  void u32(std::uint32_t v) {
    std::uint8_t b[4];
    detail::put_u32(b, v);
    buf_.insert(buf_.end(), b, b + 4);
  }
  void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
  void u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v));
    u32(static_cast<std::uint32_t>(v >> 32));
  }
  void bytes(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    buf_.insert(buf_.end(), s.begin(), s.end());
  }
  void strings(const std::vector<std::string>& v) {
    u32(static_cast<std::uint32_t>(v.size()));
    for (const auto& s : v) bytes(s);
  }
  std::vector<std::uint8_t>& data() { return buf_; }

 private:
  std::vector<std::uint8_t> buf_;
};

// Reads fields in order; after any failure every further read fails too, so a
// decoder may read all fields and check ok() once at the end.
class PayloadReader {
 public:
  PayloadReader(const std::uint8_t* data, std::size_t size) : p_(data), left_(size) {}

  bool ok() const { return ok_; }
  bool at_end() const { return ok_ && left_ == 0; }

  std::uint8_t u8() {
    if (!need(1)) return 0;
    std::uint8_t v = p_[0];
    advance(1);
    return v;
  }
  std::uint16_t u16() {
    if (!need(2)) return 0;
    std::uint16_t v = detail::get_u16(p_);
    advance(2);
    return v;
  }
  std::uint32_t u32() {
    if (!need(4)) return 0;
    std::uint32_t v = detail::get_u32(p_);
    advance(4);
    return v;
  }
  std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
  std::uint64_t u64() {
    std::uint64_t lo = u32();
    std::uint64_t hi = u32();
    return lo | (hi << 32);
  }
  std::string bytes(std::uint32_t max = kMaxStringLength) {
    std::uint32_t n = u32();
    if (!ok_ || n > max || !need(n)) {
      ok_ = false;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(p_), n);
    advance(n);
    return s;
  }
  // A string that is handed to the kernel as a C string must not hide a NUL.
  std::string c_string(std::uint32_t max = kMaxStringLength) {
    std::string s = bytes(max);
    if (s.find('\0') != std::string::npos) ok_ = false;
    return s;
  }
  std::vector<std::string> c_strings(std::uint32_t max_count) {
    std::uint32_t n = u32();
    std::vector<std::string> out;
    // Each entry takes at least 4 bytes, so a count larger than that is a lie.
    if (!ok_ || n > max_count || n > left_ / 4) {
      ok_ = false;
      return out;
    }
    out.reserve(n);
    for (std::uint32_t i = 0; i < n && ok_; ++i) out.push_back(c_string());
    return out;
  }

 private:
  bool need(std::size_t n) {
    if (!ok_ || left_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  void advance(std::size_t n) {
    p_ += n;
    left_ -= n;
  }
  const std::uint8_t* p_;
  std::size_t left_;
  bool ok_ = true;
};

// Encodes one complete frame (header + payload) ready to write.
inline std::vector<std::uint8_t> make_frame(FrameType type, std::uint32_t stream_id, const std::uint8_t* payload,
                                            std::size_t size) {
  std::vector<std::uint8_t> out(kHeaderSize + size);
  FrameHeader h{static_cast<std::uint32_t>(size), kProtocolVersion, type, stream_id};
  auto hdr = encode_header(h);
  std::memcpy(out.data(), hdr.data(), kHeaderSize);
  if (size) std::memcpy(out.data() + kHeaderSize, payload, size);
  return out;
}

template <typename Msg>
std::vector<std::uint8_t> make_frame(FrameType type, std::uint32_t stream_id, const Msg& msg) {
  PayloadWriter w;
  msg.encode(w);
  return make_frame(type, stream_id, w.data().data(), w.data().size());
}

inline std::vector<std::uint8_t> make_empty_frame(FrameType type, std::uint32_t stream_id) {
  return make_frame(type, stream_id, nullptr, 0);
}

// Incremental frame decoder: feed bytes as they arrive, pop whole frames.
// Memory held is bounded by kHeaderSize + kMaxPayload.
class FrameDecoder {
 public:
  struct Frame {
    FrameHeader header;
    std::vector<std::uint8_t> payload;
  };

  // Consumes up to `size` bytes; returns how many were used. Stops after one
  // complete frame so the caller can act on it before reading more.
  std::size_t feed(const std::uint8_t* data, std::size_t size) {
    std::size_t used = 0;
    if (error_ != HeaderError::None || ready_) return 0;
    while (used < size && !ready_) {
      if (have_header_ < kHeaderSize) {
        std::size_t n = std::min(kHeaderSize - have_header_, size - used);
        std::memcpy(header_buf_.data() + have_header_, data + used, n);
        have_header_ += n;
        used += n;
        if (have_header_ == kHeaderSize) {
          error_ = decode_header(header_buf_.data(), frame_.header);
          if (error_ != HeaderError::None) return used;
          frame_.payload.clear();
          frame_.payload.reserve(frame_.header.payload_length);
          if (frame_.header.payload_length == 0) ready_ = true;
        }
      } else {
        std::size_t want = frame_.header.payload_length - frame_.payload.size();
        std::size_t n = std::min(want, size - used);
        frame_.payload.insert(frame_.payload.end(), data + used, data + used + n);
        used += n;
        if (frame_.payload.size() == frame_.header.payload_length) ready_ = true;
      }
    }
    return used;
  }

  HeaderError error() const { return error_; }
  bool has_frame() const { return ready_; }

  Frame take() {
    Frame f = std::move(frame_);
    frame_ = Frame{};
    have_header_ = 0;
    ready_ = false;
    return f;
  }

 private:
  std::array<std::uint8_t, kHeaderSize> header_buf_{};
  std::size_t have_header_ = 0;
  Frame frame_;
  bool ready_ = false;
  HeaderError error_ = HeaderError::None;
};

}  // namespace gondolin::proto
