// The FUSE node ids the guest kernel holds, each mapped to the (parent, name)
// pairs that name it so its path can be rebuilt; lookup counts mirror the
// kernel's so a node lives exactly as long as the kernel may still name it.
//
// Keyed by path, not by host inode: a provider is path-based, and a table of
// paths can be written out and loaded again after a snapshot resume (the
// guest keeps its node ids across a resume, the host process does not).
//
// Invariants:
// - every (parent, name) pair names at most one node, and `by_name_` holds
//   exactly the pairs of the nodes' `names`;
// - a directory has at most one name; a file made by link(2) through the
//   guest has one name per link, so the guest kernel sees one inode (one node
//   id) however many names it has, and keeps its link count and cached
//   attributes right without being told (virtio-fs cannot tell it);
// - a node's path is built from its first name; a node with no name is
//   detached (unlinked or replaced) and serves only its open handles;
// - `children` counts the names whose parent is this node.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gondolin::proto {
class PayloadReader;
}

namespace gondolin::vfs {

class NodeTable {
 public:
  static constexpr std::uint64_t kRootId = 1;

  explicit NodeTable(std::size_t max_nodes = 1u << 20);

  bool contains(std::uint64_t id) const { return nodes_.count(id) != 0; }
  std::size_t size() const { return nodes_.size(); }

  // The node's path relative to the root ("" for the root), or nullopt if the
  // node is unknown or was unlinked/replaced (detached).
  std::optional<std::string> path(std::uint64_t id) const;
  // The path of `name` inside directory node `parent`, or nullopt if the parent is unknown/detached.
  std::optional<std::string> child_path(std::uint64_t parent, std::string_view name) const;

  // The guest kernel learnt about parent/name with file type `type` (S_IFMT
  // bits): returns its node id with one more lookup reference, creating the
  // node if needed. A node whose file type changed loses that name to a fresh
  // id (the kernel must not see one id change type). nullopt when the table is full.
  std::optional<std::uint64_t> remember(std::uint64_t parent, std::string_view name, std::uint32_t type);
  // parent/name is a new hard link to non-directory node `id`, now of file
  // type `type`: the node gains that name and one lookup reference. nullopt
  // if `id` is unknown, detached, a directory or of another type, or the
  // parent is unknown/detached (the caller then remembers a node of its own).
  std::optional<std::uint64_t> link(std::uint64_t id, std::uint64_t parent, std::string_view name, std::uint32_t type);

  // The kernel dropped `count` references.
  void forget(std::uint64_t id, std::uint64_t count);

  // parent/name was removed: its node loses that name; with none left it
  // keeps serving open handles but no longer has a path.
  void detach(std::uint64_t parent, std::string_view name);
  // from_parent/from_name now lives at to_parent/to_name; whatever was there is detached.
  void move(std::uint64_t from_parent, std::string_view from_name, std::uint64_t to_parent, std::string_view to_name);
  // The two entries swapped places (RENAME_EXCHANGE).
  void exchange(std::uint64_t a_parent, std::string_view a_name, std::uint64_t b_parent, std::string_view b_name);

  // Binary snapshot of every node, and its inverse. load() replaces the table
  // and returns false (leaving it empty but for the root) on malformed input;
  // it also reads the format of tables written before links kept one node.
  std::string serialize() const;
  bool load(std::string_view data);

 private:
  struct Key {
    std::uint64_t parent;
    std::string name;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const;
  };
  struct Node {
    std::vector<Key> names;  // empty: detached (or the root)
    std::uint64_t lookups = 0;
    std::uint32_t type = 0;
    std::uint32_t children = 0;
  };

  void add_name(std::uint64_t id, Key key);
  void remove_name(std::uint64_t id, const Key& key);
  void erase_if_unused(std::uint64_t id);
  bool attached(std::uint64_t id) const;
  std::optional<std::uint64_t> find(std::uint64_t parent, std::string_view name) const;
  bool load_node(std::uint32_t version, proto::PayloadReader& r);
  void reset();

  std::size_t max_nodes_;
  std::uint64_t next_id_ = kRootId + 1;
  std::unordered_map<std::uint64_t, Node> nodes_;
  std::unordered_map<Key, std::uint64_t, KeyHash> by_name_;
};

}  // namespace gondolin::vfs
