// Applies container image layers (OCI / Docker tar streams) onto a root
// directory the way a container runtime would, treating every byte as hostile.
//
// Theory of operation. A layer is a tar (plain, gzip or zstd; read with
// libarchive, tar formats only). Entries are applied in order:
//  - a path is normalised ("./" and "." dropped); an absolute path, a ".."
//    component, an over-long name or a path whose parent directories cross a
//    symlink (one laid by any earlier entry or layer) is refused: parents are
//    opened one component at a time with O_NOFOLLOW from the root's fd, so
//    nothing is ever created outside the root;
//  - `.wh.NAME` removes NAME as laid by earlier layers; `.wh..wh..opq` empties
//    its directory of everything earlier layers put there (what this layer put
//    there stays); other `.wh..wh.` names are ignored;
//  - an entry replaces what is at its path (a directory stays a directory and
//    only takes the new metadata), so a file never writes through a hard link
//    or symlink of an earlier layer;
//  - regular files (sparse too), directories, symlinks, hard links (to a path
//    already in the root, checked like any path) and FIFOs are created; device
//    nodes and sockets are refused;
//  - owners, modes (setuid included), times and xattrs (user., security.,
//    trusted.) are kept. What the process may not set (not root) is recorded
//    as a fixup, applied to the finished ext4 image (rootfs_tree.h).
// A refusal is a one-line reason naming the layer and the entry; the caller
// throws away the half-built root.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "util/unique_fd.h"

struct archive;  // libarchive

namespace gondolin {

// Metadata the unpacker could not set itself, to be set in the image.
struct OwnershipFixup {
  std::string path;  // "/etc/shadow"
  std::uint32_t uid = 0, gid = 0;
};
struct XattrFixup {
  std::string path, name, value;
};

struct LayerLimits {
  std::uint64_t max_bytes = 64ull << 30;  // file data over all layers
  std::uint64_t max_entries = 4u << 20;   // entries over all layers
};

class LayerUnpacker {
 public:
  // `root` must be an existing directory; throws gondolin::Error (Image) if not.
  explicit LayerUnpacker(const std::filesystem::path& root, LayerLimits limits = {});

  // Applies one layer. Returns the reason it was refused, if it was; `label`
  // names the layer in that reason ("layer 2 (sha256:ab12…)").
  std::optional<std::string> apply_file(const std::filesystem::path& layer, const std::string& label);
  std::optional<std::string> apply_memory(const void* data, std::size_t size, const std::string& label);

  const std::vector<OwnershipFixup>& ownership_fixups() const { return owner_fixups_; }
  const std::vector<XattrFixup>& xattr_fixups() const { return xattr_fixups_; }

  struct Entry;  // one tar entry, parsed and checked

 private:
  std::optional<std::string> apply_archive(::archive* a, const std::string& label);
  std::optional<std::string> apply_entry(::archive* a, const Entry& e);
  std::optional<std::string> open_parent(const std::vector<std::string>& parts, bool create, UniqueFd& out);
  std::optional<std::string> make_node(::archive* a, const Entry& e, int parent);
  std::optional<std::string> write_data(::archive* a, int fd, const Entry& e);
  std::optional<std::string> hard_link(const Entry& e, int parent);
  void set_metadata(const Entry& e, int parent);
  void whiteout(const Entry& e, int parent);
  void remove_lower(int dirfd, const std::string& dir_path);

  UniqueFd root_;
  LayerLimits limits_;
  std::uint64_t bytes_ = 0, entries_ = 0;
  std::set<std::string> laid_this_layer_;                                        // normalised paths this layer created
  std::vector<std::pair<std::vector<std::string>, struct timespec>> dir_times_;  // set when a layer ends
  std::vector<OwnershipFixup> owner_fixups_;
  std::vector<XattrFixup> xattr_fixups_;
};

}  // namespace gondolin
