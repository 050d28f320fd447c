// Reading a container image a user saved: an OCI image layout directory, or
// an archive (`docker save` / `podman save`, or an OCI layout as a tar).
//
// Nothing here talks to a registry. Everything read is untrusted: files are
// opened with openat2(RESOLVE_IN_ROOT), so no name or symlink inside the
// layout or archive reaches outside it; every blob used is checked against
// its descriptor's size and sha256 (a docker-save layer against the config's
// diff_id); JSON documents are bounded (16 MiB); only linux/amd64 images with
// tar layers (plain, gzip, zstd) are accepted. Errors are one line
// (gondolin::Error, kind Image) naming the file and what was wrong.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gondolin/guest_user.h"
#include "util/unique_fd.h"

namespace gondolin {

struct OciLayer {
  UniqueFd fd;         // the blob, verified
  std::string digest;  // "sha256:…"
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd.get()); }
};

struct OciImage {
  std::string digest;  // the manifest's digest (docker save: the config's)
  std::vector<OciLayer> layers;
  // From the image config; User as written ("1000", "app:staff", "").
  std::vector<std::pair<std::string, std::string>> env;
  std::string workdir;
  std::string user;
};

// `ref`: the org.opencontainers.image.ref.name annotation (or, for docker
// save, a RepoTags entry) to pick; empty: the only image there.
OciImage read_oci_layout(const std::filesystem::path& dir, const std::string& ref);
// Unpacks the archive into `staging` (an empty directory) with the same
// checks as a layer, then reads it as a docker-save tree (manifest.json) or
// an OCI layout (index.json).
OciImage read_image_archive(const std::filesystem::path& archive, const std::filesystem::path& staging,
                            const std::string& ref);

// An OCI User ("name", "uid", "name:group", "uid:gid") as numeric ids, names
// looked up in the unpacked root's /etc/passwd and /etc/group (read without
// leaving `root`); a missing gid is the user's primary group (else 0).
// `home` gets the user's home directory from /etc/passwd ("/" if none).
// Whether `path` names anything in the unpacked root (resolved inside it).
bool exists_in_root(const std::filesystem::path& root, const std::string& path);

GuestUser resolve_image_user(const std::filesystem::path& root, const std::string& user, std::string& home);

}  // namespace gondolin
