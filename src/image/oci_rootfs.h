// The root filesystem of an image built from a saved container image (the
// spec's "oci" key): its layers applied in order, gondolin's own files on
// top, written as ext4. Cached in the work directory by the image's digest.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gondolin/guest_user.h"
#include "image/build_spec.h"
#include "image/rootfs_tree.h"

namespace gondolin {

struct OciRootfs {
  std::filesystem::path image;  // rootfs-oci-<key>.ext4 in the work directory
  std::string digest;           // the OCI manifest's (docker save: the config's)
  // The config's defaults: Env (plus HOME for a User), WorkingDir, User.
  std::vector<std::pair<std::string, std::string>> env;
  std::string workdir;
  std::optional<GuestUser> user;
};

// Throws gondolin::Error (Image) with one line on a bad image; a refused
// build leaves no tree or half-written file in `work`. `cached` says whether
// an earlier build was reused.
OciRootfs build_oci_rootfs(const BuildSpec& spec, const std::filesystem::path& work, const CommandRunner& run,
                           bool& cached);

}  // namespace gondolin
