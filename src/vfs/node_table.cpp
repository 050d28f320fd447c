#include "vfs/node_table.h"

#include <sys/stat.h>

#include <algorithm>
#include <functional>

#include "proto/control_protocol.h"

namespace gondolin::vfs {
namespace {

// A path never gets deeper than PATH_MAX allows; the guard also keeps a
// corrupted (cyclic) table from looping forever.
constexpr int kMaxDepth = 4096;
// 1: one (parent, name) per node. 2: a count of names, then each name.
constexpr std::uint32_t kSerialVersion = 2;
// A file has at most as many names as a host file system allows links
// (ext4: 65000); more is a corrupt table.
constexpr std::uint32_t kMaxNames = 65536;

}  // namespace

std::size_t NodeTable::KeyHash::operator()(const Key& k) const {
  return std::hash<std::string_view>()(k.name) ^ (std::hash<std::uint64_t>()(k.parent) * 0x9e3779b97f4a7c15ull);
}

NodeTable::NodeTable(std::size_t max_nodes) : max_nodes_(max_nodes) { reset(); }

void NodeTable::reset() {
  nodes_.clear();
  by_name_.clear();
  Node root;
  root.type = S_IFDIR;
  root.lookups = 1;  // the kernel's own reference, never forgotten
  nodes_.emplace(kRootId, std::move(root));
  next_id_ = kRootId + 1;
}

std::optional<std::string> NodeTable::path(std::uint64_t id) const {
  if (id == kRootId) return std::string();
  std::vector<const std::string*> parts;
  std::size_t length = 0;
  for (int depth = 0; depth < kMaxDepth; ++depth) {
    auto it = nodes_.find(id);
    if (it == nodes_.end() || it->second.names.empty()) return std::nullopt;
    const Key& first = it->second.names.front();
    parts.push_back(&first.name);
    length += first.name.size() + 1;
    id = first.parent;
    if (id == kRootId) {
      std::string out;
      out.reserve(length);
      for (auto p = parts.rbegin(); p != parts.rend(); ++p) {
        if (!out.empty()) out.push_back('/');
        out += **p;
      }
      return out;
    }
  }
  return std::nullopt;
}

std::optional<std::string> NodeTable::child_path(std::uint64_t parent, std::string_view name) const {
  auto base = path(parent);
  if (!base) return std::nullopt;
  if (base->empty()) return std::string(name);
  base->push_back('/');
  base->append(name);
  return base;
}

std::optional<std::uint64_t> NodeTable::find(std::uint64_t parent, std::string_view name) const {
  auto it = by_name_.find(Key{parent, std::string(name)});
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

bool NodeTable::attached(std::uint64_t id) const {
  auto it = nodes_.find(id);
  return it != nodes_.end() && (id == kRootId || !it->second.names.empty());
}

void NodeTable::add_name(std::uint64_t id, Key key) {
  nodes_.at(key.parent).children++;
  by_name_[key] = id;
  nodes_.at(id).names.push_back(std::move(key));
}

void NodeTable::remove_name(std::uint64_t id, const Key& key) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;
  auto& names = it->second.names;
  auto at = std::find(names.begin(), names.end(), key);
  if (at == names.end()) return;
  std::uint64_t parent = key.parent;
  by_name_.erase(key);
  names.erase(at);  // `key` may have referred into `names`: not used below
  if (auto p = nodes_.find(parent); p != nodes_.end()) {
    p->second.children--;
    erase_if_unused(parent);
  }
  erase_if_unused(id);
}

// Erases a node nothing refers to any more, with its names; a parent left
// without names or lookups goes too (recursion as deep as the path).
void NodeTable::erase_if_unused(std::uint64_t id) {
  if (id == kRootId) return;
  auto it = nodes_.find(id);
  if (it == nodes_.end() || it->second.lookups != 0 || it->second.children != 0) return;
  std::vector<Key> names = std::move(it->second.names);
  nodes_.erase(it);
  for (const Key& k : names) {
    by_name_.erase(k);
    if (auto p = nodes_.find(k.parent); p != nodes_.end()) {
      p->second.children--;
      erase_if_unused(k.parent);
    }
  }
}

std::optional<std::uint64_t> NodeTable::remember(std::uint64_t parent, std::string_view name, std::uint32_t type) {
  type &= S_IFMT;
  if (auto existing = find(parent, name)) {
    Node& n = nodes_.at(*existing);
    if (n.type == type) {
      n.lookups++;
      return *existing;
    }
    remove_name(*existing, Key{parent, std::string(name)});
  }
  if (!attached(parent) || nodes_.size() >= max_nodes_) return std::nullopt;
  std::uint64_t id = next_id_++;
  Node n;
  n.type = type;
  n.lookups = 1;
  nodes_.emplace(id, std::move(n));
  add_name(id, Key{parent, std::string(name)});
  return id;
}

std::optional<std::uint64_t> NodeTable::link(std::uint64_t id, std::uint64_t parent, std::string_view name,
                                             std::uint32_t type) {
  if (id == kRootId || !attached(id) || !attached(parent)) return std::nullopt;
  if (S_ISDIR(nodes_.at(id).type) || nodes_.at(id).type != (type & S_IFMT)) return std::nullopt;
  Node& n = nodes_.at(id);
  if (n.names.size() >= kMaxNames) return std::nullopt;
  n.lookups++;  // before the detach below, which could otherwise erase `id`'s parent chain
  detach(parent, name);
  if (!attached(parent)) {
    forget(id, 1);
    return std::nullopt;
  }
  add_name(id, Key{parent, std::string(name)});
  return id;
}

void NodeTable::forget(std::uint64_t id, std::uint64_t count) {
  if (id == kRootId) return;
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;
  it->second.lookups -= std::min(count, it->second.lookups);
  erase_if_unused(id);
}

void NodeTable::detach(std::uint64_t parent, std::string_view name) {
  if (auto id = find(parent, name)) remove_name(*id, Key{parent, std::string(name)});
}

void NodeTable::move(std::uint64_t from_parent, std::string_view from_name, std::uint64_t to_parent,
                     std::string_view to_name) {
  if (from_parent == to_parent && from_name == to_name) return;
  auto id = find(from_parent, from_name);
  detach(to_parent, to_name);
  if (!id || !nodes_.count(*id) || !nodes_.count(to_parent)) return;
  // Keep the node alive while it lacks the name for a moment.
  nodes_.at(*id).lookups++;
  remove_name(*id, Key{from_parent, std::string(from_name)});
  if (nodes_.count(to_parent)) add_name(*id, Key{to_parent, std::string(to_name)});
  forget(*id, 1);
}

void NodeTable::exchange(std::uint64_t a_parent, std::string_view a_name, std::uint64_t b_parent,
                         std::string_view b_name) {
  auto a = find(a_parent, a_name);
  auto b = find(b_parent, b_name);
  Key a_key{a_parent, std::string(a_name)};
  Key b_key{b_parent, std::string(b_name)};
  if (a) nodes_.at(*a).lookups++;
  if (b) nodes_.at(*b).lookups++;
  if (a) remove_name(*a, a_key);
  if (b) remove_name(*b, b_key);
  if (a && nodes_.count(b_parent)) add_name(*a, b_key);
  if (b && nodes_.count(a_parent)) add_name(*b, a_key);
  for (auto id : {a, b})
    if (id) forget(*id, 1);
}

std::string NodeTable::serialize() const {
  // Directories before the names under them, so load() can check each name's
  // parent in one pass: depth first from the root and from every directory
  // that lost its name (a rmdir'd or replaced one the guest still holds,
  // possibly with names under it); then the other nodes, whose parents are
  // all directories.
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> subdirs;
  std::vector<std::uint64_t> stack{kRootId}, rest;
  for (const auto& [id, n] : nodes_) {
    if (id == kRootId) continue;
    if (!S_ISDIR(n.type))
      rest.push_back(id);
    else if (n.names.empty())
      stack.push_back(id);
    else
      subdirs[n.names.front().parent].push_back(id);
  }
  // In id order wherever the map's order would show: the same table always
  // gives the same bytes.
  std::sort(stack.begin() + 1, stack.end(), std::greater<>());
  std::sort(rest.begin(), rest.end());
  for (auto& [parent, kids] : subdirs) std::sort(kids.begin(), kids.end(), std::greater<>());
  std::vector<std::uint64_t> order;
  order.reserve(nodes_.size());
  while (!stack.empty()) {
    std::uint64_t id = stack.back();
    stack.pop_back();
    if (id != kRootId) order.push_back(id);
    if (auto k = subdirs.find(id); k != subdirs.end()) stack.insert(stack.end(), k->second.begin(), k->second.end());
  }
  order.insert(order.end(), rest.begin(), rest.end());

  proto::PayloadWriter w;
  w.u32(kSerialVersion);
  w.u64(next_id_);
  w.u32(static_cast<std::uint32_t>(order.size()));
  for (std::uint64_t id : order) {
    const Node& n = nodes_.at(id);
    w.u64(id);
    w.u64(n.lookups);
    w.u32(n.type);
    w.u32(static_cast<std::uint32_t>(n.names.size()));
    for (const Key& k : n.names) {
      w.u64(k.parent);
      w.bytes(k.name);
    }
  }
  return std::string(w.data().begin(), w.data().end());
}

// One node as serialize() wrote it (or as version 1 did: id, parent,
// lookups, type, name, where parent 0 meant detached). Every name's parent
// must be a directory read before it (never the node itself), which rules
// out cycles: path() walks up to the root and ends.
bool NodeTable::load_node(std::uint32_t version, proto::PayloadReader& r) {
  std::uint64_t id = r.u64();
  std::uint64_t v1_parent = version == 1 ? r.u64() : 0;
  std::uint64_t lookups = r.u64();
  std::uint32_t type = r.u32() & S_IFMT;
  std::uint32_t count = version == 1 ? (v1_parent != 0) : r.u32();
  if (!r.ok() || id <= kRootId || id >= next_id_ || nodes_.count(id)) return false;
  if (count > (S_ISDIR(type) ? 1 : kMaxNames)) return false;
  Node n;
  n.type = type;
  n.lookups = lookups;
  nodes_.emplace(id, std::move(n));
  std::string v1_name = version == 1 ? r.c_string(255) : std::string();
  for (std::uint32_t i = 0; i < count; ++i) {
    Key key{version == 1 ? v1_parent : r.u64(), version == 1 ? v1_name : r.c_string(255)};
    if (!r.ok() || key.parent == id || !nodes_.count(key.parent) || !S_ISDIR(nodes_.at(key.parent).type) ||
        key.name.empty() || key.name.find('/') != std::string::npos || by_name_.count(key))
      return false;
    add_name(id, std::move(key));
  }
  return r.ok();
}

bool NodeTable::load(std::string_view data) {
  reset();
  proto::PayloadReader r(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  std::uint32_t version = r.u32();
  std::uint64_t next = r.u64();
  std::uint32_t count = r.u32();
  if (!r.ok() || (version != 1 && version != kSerialVersion) || count >= max_nodes_ || next <= kRootId) return false;
  next_id_ = next;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (!load_node(version, r)) {
      reset();
      return false;
    }
  }
  if (!r.at_end()) {
    reset();
    return false;
  }
  return true;
}

}  // namespace gondolin::vfs
