#include "vfs/memory_tree.h"

#include <unordered_map>
#include <vector>

#include "proto/wire.h"
#include "vfs/file_type.h"

namespace gondolin::vfs::memory_tree {
namespace {

// Format (little-endian, proto::PayloadWriter): u32 version; u64 next_ino;
// u32 node count, then each node (node 0 is the root); u32 entry count, then
// each directory entry as (u32 directory node, name, u32 child node), each
// directory's entries in listing order.
constexpr std::uint32_t kVersion = 1;
constexpr std::uint32_t kMaxName = 255;
constexpr std::uint32_t kMaxTarget = 4096;
constexpr std::uint32_t kMaxXattrValue = 64 * 1024;

void put_time(proto::PayloadWriter& w, const Timespec& t) {
  w.u64(static_cast<std::uint64_t>(t.sec));
  w.u32(t.nsec);
}

Timespec get_time(proto::PayloadReader& r) {
  Timespec t;
  t.sec = static_cast<std::int64_t>(r.u64());
  t.nsec = r.u32();
  return t;
}

void put_node(proto::PayloadWriter& w, const Node& n) {
  w.u32(n.attr.mode);
  w.u32(n.attr.uid);
  w.u32(n.attr.gid);
  w.u32(n.attr.rdev);
  w.u64(n.attr.ino);
  w.u64(n.attr.size);
  put_time(w, n.attr.atime);
  put_time(w, n.attr.mtime);
  put_time(w, n.attr.ctime);
  w.bytes(n.target);
  w.u32(static_cast<std::uint32_t>(n.xattrs.size()));
  for (const auto& [k, v] : n.xattrs) {
    w.bytes(k);
    w.bytes(v);
  }
  w.u32(static_cast<std::uint32_t>(n.chunks.size()));
  for (const auto& [index, data] : n.chunks) {
    w.u64(index);
    w.bytes(data);
  }
}

bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= kMaxName && name != "." && name != ".." &&
         name.find_first_of(std::string_view("/\0", 2)) == std::string::npos;
}

// One node's fields; "" or why they are not a node.
std::string get_node(proto::PayloadReader& r, Node& n) {
  n.attr.mode = r.u32();
  n.attr.uid = r.u32();
  n.attr.gid = r.u32();
  n.attr.rdev = r.u32();
  n.attr.ino = r.u64();
  n.attr.size = r.u64();
  n.attr.atime = get_time(r);
  n.attr.mtime = get_time(r);
  n.attr.ctime = get_time(r);
  n.target = r.bytes(kMaxTarget);
  const std::uint32_t xattrs = r.u32();
  for (std::uint32_t i = 0; i < xattrs && r.ok(); ++i) {
    std::string k = r.bytes(kMaxName);
    n.xattrs[k] = r.bytes(kMaxXattrValue);
  }
  const std::uint32_t chunks = r.u32();
  for (std::uint32_t i = 0; i < chunks && r.ok(); ++i) {
    const std::uint64_t index = r.u64();
    std::string data = r.bytes(static_cast<std::uint32_t>(kChunk));
    if (r.ok() && (data.size() != kChunk || index >= kMaxFileSize / kChunk)) return "a file chunk is malformed";
    n.chunks[index] = std::move(data);
  }
  if (!r.ok()) return "it is truncated";
  if (!known_file_type(n.attr.mode)) return "a node has an unknown file type";
  if (n.attr.size > kMaxFileSize) return "a file is larger than 1 TiB";
  if (!S_ISREG(n.attr.mode) && !n.chunks.empty()) return "a node that is no regular file has data";
  if (!S_ISLNK(n.attr.mode) && !n.target.empty()) return "a node that is no symlink has a target";
  n.attr.blocks = n.chunks.size() * (kChunk / 512);
  n.attr.nlink = 0;  // counted from the entries
  return "";
}

// Every node reachable from the root (directories have one name each, so
// this also rules out cycles among unreachable directories).
bool all_reachable(const std::vector<NodePtr>& nodes) {
  std::unordered_map<const Node*, bool> seen;
  std::vector<const Node*> todo{nodes[0].get()};
  seen[nodes[0].get()] = true;
  while (!todo.empty()) {
    const Node* d = todo.back();
    todo.pop_back();
    for (const auto& [name, entry] : d->entries)
      if (!seen[entry.first.get()]) {
        seen[entry.first.get()] = true;
        todo.push_back(entry.first.get());
      }
  }
  for (const auto& n : nodes)
    if (!seen[n.get()]) return false;
  return true;
}

}  // namespace

std::uint64_t charged_bytes(const Node& n) {
  std::uint64_t bytes = n.chunks.size() * kChunk + n.target.size();
  for (const auto& [k, v] : n.xattrs) bytes += k.size() + v.size();
  return bytes;
}

std::string encode_tree(const Node& root, std::uint64_t next_ino) {
  // Number the nodes breadth-first; hard links share one number.
  std::vector<const Node*> order{&root};
  std::unordered_map<const Node*, std::uint32_t> index{{&root, 0}};
  for (std::size_t i = 0; i < order.size(); ++i)
    for (const auto& [serial, name] : order[i]->by_serial) {
      const Node* child = order[i]->entries.at(name).first.get();
      if (index.emplace(child, static_cast<std::uint32_t>(order.size())).second) order.push_back(child);
    }
  proto::PayloadWriter w;
  w.u32(kVersion);
  w.u64(next_ino);
  w.u32(static_cast<std::uint32_t>(order.size()));
  for (const Node* n : order) put_node(w, *n);
  std::uint32_t entries = 0;
  for (const Node* n : order) entries += static_cast<std::uint32_t>(n->entries.size());
  w.u32(entries);
  for (const Node* n : order)
    for (const auto& [serial, name] : n->by_serial) {
      w.u32(index.at(n));
      w.bytes(name);
      w.u32(index.at(n->entries.at(name).first.get()));
    }
  return std::string(w.data().begin(), w.data().end());
}

std::optional<DecodedTree> decode_tree(std::string_view data, const MemoryOptions& limits, std::string& error) {
  proto::PayloadReader r(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  std::vector<NodePtr> nodes;
  auto fail = [&](const std::string& why) -> std::optional<DecodedTree> {
    // A refused stream may have linked directories into a cycle; unlink every
    // node so the shared pointers free them.
    for (const NodePtr& n : nodes) n->entries.clear();
    error = why;
    return std::nullopt;
  };
  if (r.u32() != kVersion || !r.ok()) return fail("it is not a memory file system of this gondolin's format");
  DecodedTree out;
  out.next_ino = r.u64();
  const std::uint32_t count = r.u32();
  if (!r.ok() || count == 0) return fail("it is truncated");
  if (count - 1 > limits.max_files) return fail("it holds more files than the mount allows");
  for (std::uint32_t i = 0; i < count; ++i) {
    auto n = std::make_shared<Node>();
    if (std::string why = get_node(r, *n); !why.empty()) return fail(why);
    if (n->attr.ino >= out.next_ino) return fail("a node's inode number is out of range");
    out.bytes += charged_bytes(*n);
    if (out.bytes > limits.max_bytes) return fail("it holds more data than the mount allows");
    nodes.push_back(std::move(n));
  }
  if (!nodes[0]->is_dir()) return fail("its root is not a directory");
  std::vector<bool> named(count);
  const std::uint32_t entries = r.u32();
  for (std::uint32_t i = 0; i < entries && r.ok(); ++i) {
    const std::uint32_t dir = r.u32();
    std::string name = r.bytes(kMaxName);
    const std::uint32_t child = r.u32();
    if (!r.ok()) break;
    if (dir >= count || child >= count || child == 0 || !nodes[dir]->is_dir())
      return fail("an entry names no directory or node");
    if (!valid_name(name)) return fail("an entry has an invalid name");
    Node& d = *nodes[dir];
    NodePtr& c = nodes[child];
    if (c->is_dir() && named[child]) return fail("a directory has two names");
    named[child] = true;
    if (!d.entries.emplace(name, std::make_pair(c, d.next_serial)).second) return fail("a directory has a name twice");
    d.by_serial[d.next_serial++] = name;
    c->attr.nlink += c->is_dir() ? 2u : 1u;
    if (c->is_dir()) d.attr.nlink++;
    out.bytes += name.size();
  }
  if (!r.at_end()) return fail("it is truncated or has trailing bytes");
  if (out.bytes > limits.max_bytes) return fail("it holds more data than the mount allows");
  nodes[0]->attr.nlink += 2;
  if (!all_reachable(nodes)) return fail("some of its nodes are not reachable from the root");
  out.root = nodes[0];
  out.files = count - 1;
  return out;
}

}  // namespace gondolin::vfs::memory_tree
