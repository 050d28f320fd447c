// The tree behind vfs::memory (memory_provider.cpp), and its encoding for
// snapshots: a memory mount's contents live in this process, so a snapshot
// saves them beside the guest's RAM and a resume loads them back.
//
// Invariants of a tree: the root is a directory; a directory has exactly one
// name (no hard links to directories, so no cycles); every node is reachable
// from the root; a regular file's data is in kChunk-byte chunks that exist
// only where something was written. decode_tree() checks every one of them
// on untrusted bytes, and the limits of the MemoryOptions it loads into.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gondolin/vfs.h"

namespace gondolin::vfs::memory_tree {

inline constexpr std::uint64_t kChunk = 64 * 1024;
inline constexpr std::uint64_t kMaxFileSize = 1ull << 40;
inline constexpr std::uint64_t kFirstEntryOffset = 3;  // 1 and 2 are "." and ".."

struct Node {
  Attr attr;
  std::map<std::uint64_t, std::string> chunks;  // regular files: chunk index -> kChunk bytes
  std::string target;                           // symlinks
  // Directories: name -> (node, serial); serial order is listing order, and a
  // serial never changes, so removing an entry never shifts a listing in progress.
  std::map<std::string, std::pair<std::shared_ptr<Node>, std::uint64_t>> entries;
  std::map<std::uint64_t, std::string> by_serial;
  std::uint64_t next_serial = kFirstEntryOffset;
  std::map<std::string, std::string> xattrs;
  bool is_dir() const { return S_ISDIR(attr.mode); }
};
using NodePtr = std::shared_ptr<Node>;

// Bytes a node costs against MemoryOptions::max_bytes (names are charged to
// their directory entries).
std::uint64_t charged_bytes(const Node& n);

std::string encode_tree(const Node& root, std::uint64_t next_ino);

struct DecodedTree {
  NodePtr root;
  std::uint64_t next_ino = 1;
  std::uint64_t bytes = 0;  // charged, as the provider counts them
  std::uint64_t files = 0;  // nodes other than the root
};
// nullopt, with `error` saying why, if `data` is not a valid tree within `limits`.
std::optional<DecodedTree> decode_tree(std::string_view data, const MemoryOptions& limits, std::string& error);

}  // namespace gondolin::vfs::memory_tree
