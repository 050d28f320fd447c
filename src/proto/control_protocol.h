// Wire format of the control channel between the host and the guest agent.
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

namespace gondolin::proto {

inline constexpr std::uint8_t kProtocolVersion = 4;
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
  SnapshotPrepare = 50,  // host -> guest: finish the frame in flight, then stay silent
  SnapshotReady = 51,    // guest -> host: last frame before the snapshot
  SnapshotAbort = 52,    // host -> guest: no snapshot after all; carry on
  Resume = 53,           // host -> guest (new host): drop old exec streams, say Hello again
  SessionSnapshot = 56,      // session client -> owner: save and stop this session
  SessionSnapshotDone = 57,  // owner -> session client: snapshot id and directory
  AttachExit = 58,           // owner -> attach client: the attached command's full exit status
};

inline constexpr bool is_known_frame_type(std::uint8_t t) {
  return (t >= static_cast<std::uint8_t>(FrameType::Hello) && t <= static_cast<std::uint8_t>(FrameType::Shutdown)) ||
         t == static_cast<std::uint8_t>(FrameType::FileOp) || t == static_cast<std::uint8_t>(FrameType::FileResult) ||
         t == static_cast<std::uint8_t>(FrameType::MountFs) || t == static_cast<std::uint8_t>(FrameType::MountResult) ||
         (t >= static_cast<std::uint8_t>(FrameType::SnapshotPrepare) && t <= static_cast<std::uint8_t>(FrameType::Resume)) ||
         (t >= static_cast<std::uint8_t>(FrameType::SessionSnapshot) &&
          t <= static_cast<std::uint8_t>(FrameType::AttachExit));
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
inline std::uint16_t get_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
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

// ---- Messages ---------------------------------------------------------------

struct Hello {
  std::uint32_t agent_version = 0;  // kProtocolVersion of the agent
  std::uint64_t uptime_at_start_ns = 0;  // kernel boot time until the agent ran
  std::uint64_t init_duration_ns = 0;    // agent's own boot work
  std::string kernel_release;
  std::string boot_report;  // phase timings, e.g. "modules=0.310s root-device=0.002s"

  void encode(PayloadWriter& w) const {
    w.u32(agent_version);
    w.u64(uptime_at_start_ns);
    w.u64(init_duration_ns);
    w.bytes(kernel_release);
    w.bytes(boot_report);
  }
  static std::optional<Hello> decode(PayloadReader& r) {
    Hello h;
    h.agent_version = r.u32();
    h.uptime_at_start_ns = r.u64();
    h.init_duration_ns = r.u64();
    h.kernel_release = r.c_string(256);
    h.boot_report = r.c_string(1024);
    if (!r.at_end()) return std::nullopt;
    return h;
  }
};

struct Config {
  std::uint64_t realtime_ns = 0;  // host wall clock; the guest sets its clock from it
  std::string entropy;            // seeds the guest RNG
  std::string hostname;

  void encode(PayloadWriter& w) const {
    w.u64(realtime_ns);
    w.bytes(entropy);
    w.bytes(hostname);
  }
  static std::optional<Config> decode(PayloadReader& r) {
    Config c;
    c.realtime_ns = r.u64();
    c.entropy = r.bytes(4096);
    c.hostname = r.c_string(64);
    if (!r.at_end()) return std::nullopt;
    return c;
  }
};

inline constexpr std::uint32_t kExecFlagPty = 1u << 0;
inline constexpr std::uint32_t kExecFlagStdin = 1u << 1;  // otherwise stdin is /dev/null
inline constexpr std::uint32_t kExecKnownFlags = kExecFlagPty | kExecFlagStdin;

struct ExecStart {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // KEY=VALUE, replaces the agent's default env entries
  std::string cwd;               // empty: "/"
  std::uint32_t flags = 0;
  std::uint16_t rows = 24;
  std::uint16_t cols = 80;

  void encode(PayloadWriter& w) const {
    w.strings(argv);
    w.strings(env);
    w.bytes(cwd);
    w.u32(flags);
    w.u16(rows);
    w.u16(cols);
  }
  static std::optional<ExecStart> decode(PayloadReader& r) {
    ExecStart e;
    e.argv = r.c_strings(kMaxArgs);
    e.env = r.c_strings(kMaxEnv);
    e.cwd = r.c_string(4096);
    e.flags = r.u32();
    e.rows = r.u16();
    e.cols = r.u16();
    if (!r.at_end() || e.argv.empty() || (e.flags & ~kExecKnownFlags) != 0) return std::nullopt;
    for (const auto& kv : e.env)
      if (kv.empty() || kv.front() == '=' || kv.find('=') == std::string::npos) return std::nullopt;
    return e;
  }
};

struct ExecStarted {
  std::int32_t pid = 0;
  void encode(PayloadWriter& w) const { w.i32(pid); }
  static std::optional<ExecStarted> decode(PayloadReader& r) {
    ExecStarted s;
    s.pid = r.i32();
    if (!r.at_end()) return std::nullopt;
    return s;
  }
};

struct CreditGrant {
  std::uint32_t bytes = 0;
  void encode(PayloadWriter& w) const { w.u32(bytes); }
  static std::optional<CreditGrant> decode(PayloadReader& r) {
    CreditGrant c;
    c.bytes = r.u32();
    if (!r.at_end() || c.bytes == 0 || c.bytes > kInitialWindow) return std::nullopt;
    return c;
  }
};

struct Resize {
  std::uint16_t rows = 0;
  std::uint16_t cols = 0;
  void encode(PayloadWriter& w) const {
    w.u16(rows);
    w.u16(cols);
  }
  static std::optional<Resize> decode(PayloadReader& r) {
    Resize z;
    z.rows = r.u16();
    z.cols = r.u16();
    if (!r.at_end()) return std::nullopt;
    return z;
  }
};

struct SignalRequest {
  std::int32_t signo = 0;
  void encode(PayloadWriter& w) const { w.i32(signo); }
  static std::optional<SignalRequest> decode(PayloadReader& r) {
    SignalRequest s;
    s.signo = r.i32();
    if (!r.at_end() || s.signo <= 0 || s.signo > 64) return std::nullopt;
    return s;
  }
};

struct ExitStatusMsg {
  std::int32_t exit_code = 0;  // valid when signal == 0
  std::int32_t signal = 0;     // terminating signal, 0 if it exited normally
  void encode(PayloadWriter& w) const {
    w.i32(exit_code);
    w.i32(signal);
  }
  static std::optional<ExitStatusMsg> decode(PayloadReader& r) {
    ExitStatusMsg e;
    e.exit_code = r.i32();
    e.signal = r.i32();
    if (!r.at_end() || e.exit_code < 0 || e.exit_code > 255 || e.signal < 0 || e.signal > 64)
      return std::nullopt;
    return e;
  }
};

// Why a request failed. `stage` says which step; `error_number` is the guest errno.
enum class ErrorStage : std::uint8_t { Protocol = 1, Exec = 2, Cwd = 3, Spawn = 4 };

struct ErrorMsg {
  ErrorStage stage = ErrorStage::Protocol;
  std::int32_t error_number = 0;
  std::string message;
  void encode(PayloadWriter& w) const {
    w.u8(static_cast<std::uint8_t>(stage));
    w.i32(error_number);
    w.bytes(message);
  }
  static std::optional<ErrorMsg> decode(PayloadReader& r) {
    ErrorMsg e;
    std::uint8_t stage = r.u8();
    e.error_number = r.i32();
    e.message = r.bytes(1024);
    if (!r.at_end() || stage < 1 || stage > 4) return std::nullopt;
    e.stage = static_cast<ErrorStage>(stage);
    return e;
  }
};

// ---- File operations ----------------------------------------------------------

enum class FileOpKind : std::uint8_t { Read = 1, Write = 2, Stat = 3, List = 4, Rename = 5, Remove = 6, Mkdir = 7 };

inline constexpr std::uint32_t kFileTruncate = 1u << 0;  // Write: truncate first (offset must be 0)
inline constexpr std::uint32_t kFileAppend = 1u << 1;    // Write: append (offset ignored)
inline constexpr std::uint32_t kFileParents = 1u << 2;   // Mkdir: like mkdir -p
inline constexpr std::uint32_t kFileKnownFlags = kFileTruncate | kFileAppend | kFileParents;
inline constexpr std::uint32_t kMaxPathLength = 4096;

struct FileOp {
  FileOpKind op = FileOpKind::Stat;
  std::string path;
  std::string path2;  // Rename: destination
  std::uint64_t offset = 0;
  std::uint32_t length = 0;  // Read: at most this many bytes (<= kMaxDataChunk)
  std::uint32_t mode = 0644;
  std::uint32_t flags = 0;
  std::string data;  // Write: at most kMaxDataChunk bytes

  void encode(PayloadWriter& w) const {
    w.u8(static_cast<std::uint8_t>(op));
    w.bytes(path);
    w.bytes(path2);
    w.u64(offset);
    w.u32(length);
    w.u32(mode);
    w.u32(flags);
    w.bytes(data);
  }
  static std::optional<FileOp> decode(PayloadReader& r) {
    FileOp f;
    std::uint8_t op = r.u8();
    f.path = r.c_string(kMaxPathLength);
    f.path2 = r.c_string(kMaxPathLength);
    f.offset = r.u64();
    f.length = r.u32();
    f.mode = r.u32();
    f.flags = r.u32();
    f.data = r.bytes(kMaxDataChunk);
    if (!r.at_end() || op < 1 || op > 7 || f.path.empty() || f.path[0] != '/' || f.length > kMaxDataChunk ||
        (f.flags & ~kFileKnownFlags) != 0 || f.mode > 07777)
      return std::nullopt;
    f.op = static_cast<FileOpKind>(op);
    if (f.op == FileOpKind::Rename && (f.path2.empty() || f.path2[0] != '/')) return std::nullopt;
    return f;
  }
};

struct FileStatInfo {
  std::uint32_t mode = 0;  // st_mode (type and permissions)
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint32_t uid = 0, gid = 0;
};

struct DirEntryInfo {
  std::string name;
  std::uint32_t mode = 0;  // file type bits only
};

struct FileResult {
  std::int32_t error_number = 0;  // 0: success
  FileStatInfo stat;              // Stat
  std::string data;               // Read: bytes; List: encoded entries
  std::uint8_t eof = 0;           // Read: end of file reached; List: no more entries

  void encode(PayloadWriter& w) const {
    w.i32(error_number);
    w.u32(stat.mode);
    w.u64(stat.size);
    w.u64(static_cast<std::uint64_t>(stat.mtime_ns));
    w.u32(stat.uid);
    w.u32(stat.gid);
    w.bytes(data);
    w.u8(eof);
  }
  static std::optional<FileResult> decode(PayloadReader& r) {
    FileResult f;
    f.error_number = r.i32();
    f.stat.mode = r.u32();
    f.stat.size = r.u64();
    f.stat.mtime_ns = static_cast<std::int64_t>(r.u64());
    f.stat.uid = r.u32();
    f.stat.gid = r.u32();
    f.data = r.bytes(kMaxPayload - 64);
    f.eof = r.u8();
    if (!r.at_end() || f.error_number < 0 || f.error_number > 4095 || f.eof > 1) return std::nullopt;
    return f;
  }
};

// List results: entries packed into FileResult::data.
inline std::string encode_dir_entries(const std::vector<DirEntryInfo>& entries) {
  PayloadWriter w;
  w.u32(static_cast<std::uint32_t>(entries.size()));
  for (const auto& e : entries) {
    w.bytes(e.name);
    w.u32(e.mode);
  }
  return std::string(w.data().begin(), w.data().end());
}

inline std::optional<std::vector<DirEntryInfo>> decode_dir_entries(const std::string& data) {
  PayloadReader r(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  std::uint32_t n = r.u32();
  std::vector<DirEntryInfo> out;
  if (!r.ok() || n > data.size() / 8) return std::nullopt;
  for (std::uint32_t i = 0; i < n; ++i) {
    DirEntryInfo e;
    e.name = r.c_string(255);
    e.mode = r.u32();
    if (!r.ok() || e.name.empty() || e.name.find('/') != std::string::npos) return std::nullopt;
    out.push_back(std::move(e));
  }
  if (!r.at_end()) return std::nullopt;
  return out;
}

// ---- File system mounts ---------------------------------------------------------

inline constexpr std::uint32_t kMountReadOnly = 1u << 0;  // the guest mounts it read-only too
// virtio-fs instead of the FUSE relay: port_name is then the device's tag.
// (An older agent refuses the unknown flag, so the mismatch is one clear error.)
inline constexpr std::uint32_t kMountVirtiofs = 1u << 1;
inline constexpr std::uint32_t kMountKnownFlags = kMountReadOnly | kMountVirtiofs;
inline constexpr char kFsPortPrefix[] = "gondolin.fs";

// The agent mounts FUSE at guest_path and relays between /dev/fuse and the
// named port, whose other end is the host's FUSE server for this mount.
struct MountRequest {
  std::string port_name;   // "gondolin.fs<N>": the virtio-serial port, or the virtio-fs tag
  std::string guest_path;  // absolute, created if missing
  std::uint32_t flags = 0;
  std::uint32_t max_read = 0;  // bytes per FUSE read (also the guest's readahead)

  void encode(PayloadWriter& w) const {
    w.bytes(port_name);
    w.bytes(guest_path);
    w.u32(flags);
    w.u32(max_read);
  }
  static std::optional<MountRequest> decode(PayloadReader& r) {
    MountRequest m;
    m.port_name = r.c_string(64);
    m.guest_path = r.c_string(kMaxPathLength);
    m.flags = r.u32();
    m.max_read = r.u32();
    if (!r.at_end() || m.port_name.rfind(kFsPortPrefix, 0) != 0 || m.guest_path.empty() || m.guest_path[0] != '/' ||
        (m.flags & ~kMountKnownFlags) != 0 || m.max_read < 4096 || m.max_read > (1u << 24))
      return std::nullopt;
    return m;
  }
};

struct MountResultMsg {
  std::int32_t error_number = 0;  // 0: mounted
  std::string message;            // which step failed
  void encode(PayloadWriter& w) const {
    w.i32(error_number);
    w.bytes(message);
  }
  static std::optional<MountResultMsg> decode(PayloadReader& r) {
    MountResultMsg m;
    m.error_number = r.i32();
    m.message = r.bytes(1024);
    if (!r.at_end() || m.error_number < 0 || m.error_number > 4095) return std::nullopt;
    return m;
  }
};

// ---- Session socket (between gondolin processes of one user) -----------------

struct SessionSnapshotRequest {
  std::string output_dir;  // empty: the snapshot store
  void encode(PayloadWriter& w) const { w.bytes(output_dir); }
  static std::optional<SessionSnapshotRequest> decode(PayloadReader& r) {
    SessionSnapshotRequest q;
    q.output_dir = r.c_string(kMaxPathLength);
    if (!r.at_end()) return std::nullopt;
    return q;
  }
};

struct SessionSnapshotDoneMsg {
  std::string id;
  std::string dir;
  void encode(PayloadWriter& w) const {
    w.bytes(id);
    w.bytes(dir);
  }
  static std::optional<SessionSnapshotDoneMsg> decode(PayloadReader& r) {
    SessionSnapshotDoneMsg d;
    d.id = r.c_string(64);
    d.dir = r.c_string(kMaxPathLength);
    if (!r.at_end()) return std::nullopt;
    return d;
  }
};

struct AttachExitMsg {
  std::int32_t exit_code = 0;
  std::int32_t signal = 0;
  std::uint8_t timed_out = 0;
  std::string start_error;
  void encode(PayloadWriter& w) const {
    w.i32(exit_code);
    w.i32(signal);
    w.u8(timed_out);
    w.bytes(start_error);
  }
  static std::optional<AttachExitMsg> decode(PayloadReader& r) {
    AttachExitMsg e;
    e.exit_code = r.i32();
    e.signal = r.i32();
    e.timed_out = r.u8();
    e.start_error = r.bytes(4096);
    if (!r.at_end() || e.exit_code < 0 || e.exit_code > 255 || e.signal < 0 || e.signal > 64) return std::nullopt;
    return e;
  }
};

// Encodes one complete frame (header + payload) ready to write.
inline std::vector<std::uint8_t> make_frame(FrameType type, std::uint32_t stream_id,
                                            const std::uint8_t* payload, std::size_t size) {
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
