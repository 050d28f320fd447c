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
constexpr std::uint32_t kSerialVersion = 1;

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
    if (it == nodes_.end() || it->second.parent == 0) return std::nullopt;
    parts.push_back(&it->second.name);
    length += it->second.name.size() + 1;
    id = it->second.parent;
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

void NodeTable::attach_node(std::uint64_t id, std::uint64_t parent, std::string name) {
  Node& n = nodes_.at(id);
  n.parent = parent;
  n.name = name;
  by_name_[Key{parent, std::move(name)}] = id;
  nodes_.at(parent).children++;
}

void NodeTable::detach_node(std::uint64_t id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end() || it->second.parent == 0) return;
  std::uint64_t parent = it->second.parent;
  by_name_.erase(Key{parent, it->second.name});
  it->second.parent = 0;
  auto p = nodes_.find(parent);
  if (p != nodes_.end()) {
    p->second.children--;
    erase_if_unused(parent);
  }
  erase_if_unused(id);
}

void NodeTable::erase_if_unused(std::uint64_t id) {
  if (id == kRootId) return;
  auto it = nodes_.find(id);
  if (it == nodes_.end() || it->second.lookups != 0 || it->second.children != 0) return;
  detach_node(id);  // no-op if already detached; otherwise recurses once into this id
  nodes_.erase(id);
}

std::optional<std::uint64_t> NodeTable::remember(std::uint64_t parent, std::string_view name, std::uint32_t type) {
  type &= S_IFMT;
  if (auto existing = find(parent, name)) {
    Node& n = nodes_.at(*existing);
    if (n.type == type) {
      n.lookups++;
      return *existing;
    }
    detach_node(*existing);
  }
  auto p = nodes_.find(parent);
  if (p == nodes_.end() || (parent != kRootId && p->second.parent == 0)) return std::nullopt;
  if (nodes_.size() >= max_nodes_) return std::nullopt;
  std::uint64_t id = next_id_++;
  Node n;
  n.type = type;
  n.lookups = 1;
  nodes_.emplace(id, std::move(n));
  attach_node(id, parent, std::string(name));
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
  if (auto id = find(parent, name)) detach_node(*id);
}

void NodeTable::move(std::uint64_t from_parent, std::string_view from_name, std::uint64_t to_parent,
                     std::string_view to_name) {
  if (from_parent == to_parent && from_name == to_name) return;
  auto id = find(from_parent, from_name);
  detach(to_parent, to_name);
  if (!id || !nodes_.count(*id) || !nodes_.count(to_parent)) return;
  // Keep the node alive while it has no parent for a moment.
  Node& n = nodes_.at(*id);
  n.lookups++;
  detach_node(*id);
  if (nodes_.count(to_parent)) attach_node(*id, to_parent, std::string(to_name));
  forget(*id, 1);
}

void NodeTable::exchange(std::uint64_t a_parent, std::string_view a_name, std::uint64_t b_parent,
                         std::string_view b_name) {
  auto a = find(a_parent, a_name);
  auto b = find(b_parent, b_name);
  for (auto id : {a, b})
    if (id) {
      nodes_.at(*id).lookups++;
      detach_node(*id);
    }
  if (a && nodes_.count(b_parent)) attach_node(*a, b_parent, std::string(b_name));
  if (b && nodes_.count(a_parent)) attach_node(*b, a_parent, std::string(a_name));
  for (auto id : {a, b})
    if (id) forget(*id, 1);
}

std::string NodeTable::serialize() const {
  proto::PayloadWriter w;
  w.u32(kSerialVersion);
  w.u64(next_id_);
  w.u32(static_cast<std::uint32_t>(nodes_.size() - 1));
  // Parents before children, so load() can attach in one pass.
  std::vector<std::uint64_t> order;
  order.reserve(nodes_.size());
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> kids;
  std::vector<std::uint64_t> detached;
  for (const auto& [id, n] : nodes_) {
    if (id == kRootId) continue;
    if (n.parent == 0)
      detached.push_back(id);
    else
      kids[n.parent].push_back(id);
  }
  std::vector<std::uint64_t> stack{kRootId};
  while (!stack.empty()) {
    std::uint64_t id = stack.back();
    stack.pop_back();
    if (id != kRootId) order.push_back(id);
    if (auto k = kids.find(id); k != kids.end()) stack.insert(stack.end(), k->second.begin(), k->second.end());
  }
  order.insert(order.end(), detached.begin(), detached.end());
  for (std::uint64_t id : order) {
    const Node& n = nodes_.at(id);
    w.u64(id);
    w.u64(n.parent);
    w.u64(n.lookups);
    w.u32(n.type);
    w.bytes(n.name);
  }
  return std::string(w.data().begin(), w.data().end());
}

bool NodeTable::load(std::string_view data) {
  reset();
  proto::PayloadReader r(reinterpret_cast<const std::uint8_t*>(data.data()), data.size());
  if (r.u32() != kSerialVersion) return false;
  std::uint64_t next = r.u64();
  std::uint32_t count = r.u32();
  if (!r.ok() || count >= max_nodes_) return false;
  auto fail = [this] {
    reset();
    return false;
  };
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint64_t id = r.u64();
    std::uint64_t parent = r.u64();
    std::uint64_t lookups = r.u64();
    std::uint32_t type = r.u32();
    std::string name = r.c_string(255);
    if (!r.ok() || id <= kRootId || id >= next || nodes_.count(id)) return fail();
    Node n;
    n.type = type & S_IFMT;
    n.lookups = lookups;
    nodes_.emplace(id, std::move(n));
    if (parent != 0) {
      if (!nodes_.count(parent) || name.empty() || name.find('/') != std::string::npos ||
          by_name_.count(Key{parent, name}))
        return fail();
      attach_node(id, parent, std::move(name));
    }
  }
  if (!r.at_end()) return fail();
  next_id_ = next;
  return true;
}

}  // namespace gondolin::vfs
