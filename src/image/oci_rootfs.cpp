#include "image/oci_rootfs.h"

#include <nlohmann/json.hpp>

#include "gondolin/error.h"
#include "image/layer_unpacker.h"
#include "image/oci_image.h"
#include "image/tar_writer.h"
#include "util/files.h"
#include "util/sha256.h"

namespace gondolin {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Bump when the same OCI image would give another root filesystem.
constexpr int kOciRootfsVersion = 2;

// What a cached root remembers of its image config.
std::string to_sidecar(const OciRootfs& r) {
  json env = json::array();
  for (const auto& [k, v] : r.env) env.push_back(json::array({k, v}));
  json doc{{"digest", r.digest}, {"env", env}, {"workdir", r.workdir}};
  if (r.user) doc["user"] = json::array({r.user->uid, r.user->gid});
  return doc.dump();
}

std::optional<OciRootfs> from_sidecar(const fs::path& image, const fs::path& sidecar) {
  auto text = read_file_if_exists(sidecar);
  if (!text) return std::nullopt;
  json doc = json::parse(*text, nullptr, false);
  try {
    OciRootfs r;
    r.image = image;
    r.digest = doc.at("digest").get<std::string>();
    for (const auto& kv : doc.at("env")) r.env.emplace_back(kv.at(0).get<std::string>(), kv.at(1).get<std::string>());
    r.workdir = doc.at("workdir").get<std::string>();
    if (doc.contains("user"))
      r.user = GuestUser{doc["user"].at(0).get<std::uint32_t>(), doc["user"].at(1).get<std::uint32_t>()};
    return r;
  } catch (const json::exception&) {
    return std::nullopt;  // damaged: build again
  }
}

// Removes the build's scratch directories however it ends.
struct ScratchDirs {
  std::vector<fs::path> dirs;
  ~ScratchDirs() {
    std::error_code ec;
    for (const auto& d : dirs) fs::remove_all(d, ec);
  }
};

OciRootfs unpack_and_write(const BuildSpec& spec, OciImage img, const fs::path& tree, const fs::path& image,
                           const CommandRunner& run) {
  LayerUnpacker unpacker(tree);
  for (std::size_t i = 0; i < img.layers.size(); ++i) {
    std::string label = "OCI image layer " + std::to_string(i + 1) + " (" + img.layers[i].digest.substr(0, 19) + ")";
    if (auto bad = unpacker.apply_file(img.layers[i].path(), label)) throw Error(ErrorKind::Image, *bad);
  }
  // As a container runtime does, a WorkingDir the image lacks is made (root, 0755).
  if (!img.workdir.empty() && !exists_in_root(tree, img.workdir)) {
    TarWriter dir;
    dir.add(TarEntry::dir(img.workdir.substr(1)));
    std::string layer = dir.finish();
    if (auto bad = unpacker.apply_memory(layer.data(), layer.size(), "making the image's WorkingDir"))
      throw Error(ErrorKind::Image, *bad);
  }
  std::string own = gondolin_root_layer(spec.init_extra);
  if (auto bad = unpacker.apply_memory(own.data(), own.size(), "adding gondolin's files to the OCI image"))
    throw Error(ErrorKind::Image, *bad);
  OciRootfs r;
  r.image = image;
  r.digest = img.digest;
  r.env = img.env;
  r.workdir = img.workdir;
  if (!img.user.empty()) {
    std::string home;
    r.user = resolve_image_user(tree, img.user, home);
    bool has_home = false;
    for (const auto& kv : r.env) has_home = has_home || kv.first == "HOME";
    if (!has_home) r.env.emplace_back("HOME", home);
  }
  write_ext4_image(tree, image, spec.rootfs_free_mib, &unpacker, run);
  return r;
}

}  // namespace

OciRootfs build_oci_rootfs(const BuildSpec& spec, const fs::path& work, const CommandRunner& run, bool& cached) {
  const BuildSpec::Oci& oci = *spec.oci;
  std::string key_input = "oci v" + std::to_string(kOciRootfsVersion) + "|" + std::to_string(spec.rootfs_free_mib) +
                          "|" + spec.init_extra + "|ref " + oci.ref;
  std::optional<OciImage> img;
  if (!oci.layout.empty()) {
    img = read_oci_layout(oci.layout, oci.ref);
    key_input += "|" + img->digest;
  } else {
    key_input += "|archive " + sha256_file_hex_memo(oci.archive, work / "archive-hashes");
  }
  std::string key = sha256_hex(key_input).substr(0, 16);
  fs::path image = work / ("rootfs-oci-" + key + ".ext4");
  fs::path sidecar = work / ("rootfs-oci-" + key + ".json");
  cached = false;
  if (fs::exists(image))
    if (auto r = from_sidecar(image, sidecar)) {
      cached = true;
      return *r;
    }

  ScratchDirs scratch{{work / ("rootfs-oci-" + key + ".tree"), work / ("oci-" + key + ".archive")}};
  for (const auto& d : scratch.dirs) {
    fs::remove_all(d);
    fs::create_directories(d);
  }
  if (!img) img = read_image_archive(oci.archive, scratch.dirs[1], oci.ref);
  OciRootfs r = unpack_and_write(spec, std::move(*img), scratch.dirs[0], image, run);
  write_file_atomic(sidecar, to_sidecar(r));
  return r;
}

}  // namespace gondolin
