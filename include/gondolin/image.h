// Guest images: what they contain, where they live, how they are built.
//
// An image is a directory holding a kernel, an initramfs (whose /init is the
// gondolin agent), a read-only root filesystem and a manifest.json describing
// them. Images never change once built; sessions write to a throwaway layer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gondolin/guest_user.h"

namespace gondolin {

struct ImageFile {
  std::string file;    // name inside the image directory
  std::string sha256;  // hex
  std::uint64_t size = 0;
};

struct ImageManifest {
  static constexpr int kSchemaVersion = 1;

  std::string id;       // 16 hex digits, derived from the contents
  std::string name;     // e.g. debian-base
  std::string tag;      // e.g. latest
  std::string arch;     // x86_64
  std::string created;  // RFC 3339
  std::string kernel_release;
  std::string kernel_format;  // "elf" (vmlinux, PVH-bootable) or "bzimage"
  std::string rootfs_format;  // "ext4"
  ImageFile kernel, initramfs, rootfs;
  std::string cmdline;  // kernel command line the image needs
  std::uint32_t agent_protocol = 0;
  std::string spec_json;  // the build spec it came from, verbatim JSON
  // The guest's base environment (the spec's "env"): every exec starts with
  // it; VmOptions::env and ExecOptions::env override it.
  std::vector<std::pair<std::string, std::string>> env;
  // Defaults of every command (an OCI config's WorkingDir and User); empty /
  // unset: "/" and root. ExecOptions override them.
  std::string workdir;
  std::optional<GuestUser> user;
  std::string oci_digest;  // "sha256:…" of the OCI manifest the root came from

  // Strict parse: unknown schema, missing fields, bad hashes or file names that
  // leave the directory are errors (gondolin::Error, kind Image).
  static ImageManifest parse(const std::string& json_text, const std::string& origin);
  std::string to_json() const;
  // The id these contents, this command line, environment and name:tag get.
  std::string compute_id() const;
};

struct Image {
  std::filesystem::path dir;
  ImageManifest manifest;

  std::filesystem::path kernel_path() const { return dir / manifest.kernel.file; }
  std::filesystem::path initramfs_path() const { return dir / manifest.initramfs.file; }
  std::filesystem::path rootfs_path() const { return dir / manifest.rootfs.file; }
  std::string display_name() const;
};

// The local image cache: $XDG_CACHE_HOME/gondolin/images/<id>/.
class ImageStore {
 public:
  explicit ImageStore(std::filesystem::path root);
  static ImageStore default_store();

  const std::filesystem::path& root() const { return root_; }

  // Resolves name:tag (the build last given that name by build, tag or
  // import, else its newest build), an id or unique id prefix, or a
  // path to an image directory / manifest. Checks that the files exist with
  // the recorded sizes. Throws gondolin::Error (kind Image) with a hint.
  Image resolve(const std::string& reference) const;
  std::vector<Image> list() const;
  // What `gondolin image prune` deletes: the builds no name:tag resolves to
  // any more (for each name:tag the build it was last given, the newest
  // build, and the newest one this build's agent protocol can talk to, are
  // kept), minus every id in `in_use`
  // (snapshots, running sessions). Newest first; deletes nothing itself.
  std::vector<Image> prunable(const std::set<std::string>& in_use) const;

  // Moves a finished image directory into the store (atomically), gives it
  // its manifest's name:tag (point_name_at), and returns it.
  Image install(const std::filesystem::path& staged_dir) const;
  // From now on the image's name:tag means this build (if it has a name).
  void point_name_at(const Image& image) const;
  // Like resolve(), but an exact id is found without resolve()'s checks, so
  // builds too old or damaged to run can still be named for deletion.
  Image resolve_for_removal(const std::string& reference) const;
  void remove(const std::string& reference) const;
  // The same files under another NAME[:TAG] (hard links, a new manifest and id).
  Image tag(const std::string& reference, const std::string& name_tag) const;
  // One .tar.zst holding the image directory, for another machine.
  void export_to(const std::string& reference, const std::filesystem::path& archive) const;
  // From an exported archive or an image directory: only the four files an
  // image has, every hash checked, then installed (optionally renamed).
  Image import_from(const std::filesystem::path& source, const std::string& name_tag = {}) const;

  // Recomputes every file's sha256 against the manifest.
  static void verify(const Image& image);

 private:
  std::filesystem::path root_;
};

// The image the VM uses when none is named.
std::string default_image_reference();

// One step of an image build starting (done == false) or finishing.
struct BuildProgress {
  int step = 0;
  int total = 0;
  std::string title;
  bool done = false;
  bool cached = false;  // finished instantly from the work-dir cache
  double seconds = 0;   // when done
};

struct BuildOptions {
  std::filesystem::path spec_path;  // empty: the built-in debian-base spec
  std::filesystem::path work_dir;   // caches downloads and root filesystems; default <cache>/build
  ImageStore* store = nullptr;      // default: ImageStore::default_store()
  bool force = false;               // rebuild even if an identical image exists
  std::string name_tag;             // "name:tag" instead of the spec's name and tag
  std::function<void(const BuildProgress&)> progress;
};

// Builds (or finds an identical, already built) image and installs it.
Image build_image(const BuildOptions& options);

}  // namespace gondolin
