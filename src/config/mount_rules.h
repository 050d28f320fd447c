// The grammar of mounts: --mount-hostfs, --mount-memfs and --hide, from text
// to a vfs::Mount list, and the rule for a guest mount point. Every failure is
// a gondolin::Error (Usage) with one line naming the flag and what is wrong.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "gondolin/vfs.h"

namespace gondolin::config {

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

// Checks and normalises an absolute guest path ("/a//b/" -> "/a/b"); throws
// gondolin::Error (Usage) naming `what` if it cannot be a mount point.
std::string normalize_mount_path(const std::string& path, const std::string& what);

}  // namespace gondolin::config
