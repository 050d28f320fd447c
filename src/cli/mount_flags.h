// --mount-hostfs, --mount-memfs and --hide: from flag text to vfs::Mount list.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "gondolin/vfs.h"

namespace gondolin::cli {

// What may follow a mount's paths after ':' — a comma-separated list that
// overrides --mount-transport / --mount-cache for that mount:
// ro | rw, transport=serial|virtiofs, cache=auto|direct.
struct MountSuffix {
  bool read_only = false;
  std::optional<vfs::FsTransport> transport;
  std::optional<bool> direct_io;
};

struct HostfsSpec {
  std::filesystem::path host_dir;  // absolute
  std::string guest_path;
  MountSuffix suffix;
};

// HOST_DIR:GUEST_PATH[:OPTIONS]. The host directory must exist. Throws
// gondolin::Error (Usage) naming the flag and what is wrong.
HostfsSpec parse_hostfs_spec(const std::string& text);

struct MemfsSpec {
  std::string guest_path;
  MountSuffix suffix;  // never read-only: an empty read-only tree is useless
};
// GUEST_PATH[:OPTIONS].
MemfsSpec parse_memfs_spec(const std::string& text);

// Builds the mounts; each --hide glob (an absolute guest path glob) applies
// to the mount it lies in, or to every mount if it starts with "/**/".
// Every mount starts from `defaults`, then its own suffix.
std::vector<vfs::Mount> build_mounts(const std::vector<std::string>& hostfs, const std::vector<std::string>& memfs,
                                     const std::vector<std::string>& hide, const vfs::MountOptions& defaults = {});

}  // namespace gondolin::cli
