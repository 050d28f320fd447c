// Control-channel messages for the host-side file API (Vm::read_file and
// friends), served by the guest agent. Header-only, shared with the agent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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

}  // namespace gondolin::proto
