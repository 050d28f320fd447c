// Resolving guest paths under an exported host directory without ever
// leaving it: openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), or on kernels
// without openat2 a walk of O_NOFOLLOW opens one component at a time. No
// symlink is followed at any point, so a symlink (planted by the guest or
// swapped in by anyone during an operation) can never redirect a lookup.
#pragma once

#include <string>
#include <string_view>

#include "gondolin/vfs.h"
#include "util/unique_fd.h"

namespace gondolin::vfs {

// Opens `rel` (relative to `root`, components as the FUSE server guarantees
// them, "" for the root itself) with `flags` | O_NOFOLLOW | O_CLOEXEC.
// A symlink anywhere on the way fails with ELOOP; O_PATH | O_NOFOLLOW on a
// symlink as the last component returns the link itself.
Result<UniqueFd> open_beneath(int root, std::string_view rel, int flags, unsigned mode = 0);

// A directory and one name in it: what *at() system calls need.
struct ParentAndName {
  UniqueFd dir;      // O_PATH directory descriptor
  std::string name;  // last component
};
// Splits `rel` into its parent directory (opened beneath `root`) and last
// name. The root itself has no parent: EBUSY.
Result<ParentAndName> open_parent(int root, std::string_view rel);

// "/proc/self/fd/N": the exact inode behind an O_PATH descriptor, for calls
// that have no fd form (chmod, truncate, xattrs on O_PATH).
std::string proc_fd_path(int fd);

}  // namespace gondolin::vfs
