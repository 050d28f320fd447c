// Control-channel messages for the host-side file API (Vm::read_file and
// friends), served by the guest agent. Header-only, shared with the agent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/message_fields.h"
#include "proto/wire.h"

namespace gondolin::proto {

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

  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.enum_u8(m.op);
    f.text(m.path, kMaxPathLength);
    f.text(m.path2, kMaxPathLength);
    f.u64(m.offset);
    f.u32(m.length);
    f.u32(m.mode);
    f.u32(m.flags);
    f.blob(m.data, kMaxDataChunk);
  }
  bool valid() const {
    const auto kind = static_cast<std::uint8_t>(op);
    if (kind < 1 || kind > 7 || path.empty() || path[0] != '/' || length > kMaxDataChunk ||
        (flags & ~kFileKnownFlags) != 0 || mode > 07777)
      return false;
    return op != FileOpKind::Rename || (!path2.empty() && path2[0] == '/');
  }
  GONDOLIN_WIRE_MESSAGE(FileOp)
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

  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.i32(m.error_number);
    f.u32(m.stat.mode);
    f.u64(m.stat.size);
    f.i64(m.stat.mtime_ns);
    f.u32(m.stat.uid);
    f.u32(m.stat.gid);
    f.blob(m.data, kMaxPayload - 64);
    f.u8(m.eof);
  }
  bool valid() const { return error_number >= 0 && error_number <= 4095 && eof <= 1; }
  GONDOLIN_WIRE_MESSAGE(FileResult)
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

}  // namespace gondolin::proto
