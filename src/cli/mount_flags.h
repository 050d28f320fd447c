// --mount-hostfs, --mount-memfs and --hide: from flag text to vfs::Mount list.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "gondolin/vfs.h"

namespace gondolin::cli {

struct HostfsSpec {
  std::filesystem::path host_dir;  // absolute
  std::string guest_path;
  bool read_only = false;
};

// HOST_DIR:GUEST_PATH[:ro]. The host directory must exist. Throws
// gondolin::Error (Usage) naming the flag and what is wrong.
HostfsSpec parse_hostfs_spec(const std::string& text);

// Builds the mounts; each --hide glob (an absolute guest path glob) applies
// to the mount it lies in, or to every mount if it starts with "/**/".
std::vector<vfs::Mount> build_mounts(const std::vector<std::string>& hostfs, const std::vector<std::string>& memfs,
                                     const std::vector<std::string>& hide);

}  // namespace gondolin::cli
