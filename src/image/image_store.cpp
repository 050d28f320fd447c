#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "gondolin/error.h"
#include "gondolin/image.h"
#include "image/image_prune.h"
#include "image/name_index.h"
#include "proto/protocol_version.h"
#include "util/files.h"
#include "util/hex.h"
#include "util/logging.h"
#include "util/paths.h"
#include "util/sha256.h"

namespace gondolin {
namespace fs = std::filesystem;
namespace {

constexpr const char* kBuildHint = "build it with `gondolin build` (default spec images/debian-base.json)";

std::string read_text(const fs::path& p) {
  auto text = read_file_if_exists(p);
  if (!text) throw Error(ErrorKind::Image, "cannot read image manifest " + p.string());
  return *text;
}

Image load_image_dir(const fs::path& dir) {
  fs::path manifest = dir / "manifest.json";
  std::error_code ec;
  if (!fs::exists(manifest, ec))
    throw Error(ErrorKind::Image, "no image at " + dir.string() + " (manifest.json is missing)");
  Image img{dir, ImageManifest::parse(read_text(manifest), manifest.string())};
  return img;
}

// Cheap integrity check done on every start: the files exist with the sizes
// the manifest records. `gondolin image verify` checks the hashes too.
void check_files(const Image& img) {
  for (const ImageFile* f : {&img.manifest.kernel, &img.manifest.initramfs, &img.manifest.rootfs}) {
    fs::path p = img.dir / f->file;
    std::error_code ec;
    auto size = fs::file_size(p, ec);
    if (ec)
      throw Error(ErrorKind::Image, "image " + img.display_name() + " is incomplete: " + p.string() +
                                        " is missing; rebuild it with `gondolin build`");
    if (size != f->size)
      throw Error(ErrorKind::Image, "image " + img.display_name() + " is damaged: " + p.string() + " has " +
                                        std::to_string(size) + " bytes, the manifest says " + std::to_string(f->size) +
                                        "; rebuild it with `gondolin build`");
  }
  if (img.manifest.agent_protocol != proto::kProtocolVersion)
    throw Error(ErrorKind::Image, "image " + img.display_name() + " carries agent protocol " +
                                      std::to_string(img.manifest.agent_protocol) + " but this gondolin speaks " +
                                      std::to_string(proto::kProtocolVersion) + "; rebuild it with `gondolin build`");
}

bool looks_like_path(const std::string& ref) {
  return ref.find('/') != std::string::npos || ref.starts_with(".") || ref.ends_with(".json");
}

constexpr std::size_t kIdLength = 16;

bool is_hex_prefix(const std::string& s) {
  if (s.size() < 4 || s.size() > kIdLength) return false;
  return is_lower_hex(s);
}

// The image whose directory is named `id` (as the store names them), if
// its manifest says so too; nothing else is read.
std::optional<Image> stored_image(const fs::path& root, const std::string& id) {
  if (id.size() != kIdLength || !is_lower_hex(id)) return std::nullopt;
  std::error_code ec;
  if (!fs::exists(root / id / "manifest.json", ec)) return std::nullopt;
  try {
    Image img = load_image_dir(root / id);
    if (img.manifest.id == id) return img;
  } catch (const Error&) {}
  return std::nullopt;
}

}  // namespace

std::string default_image_reference() {
  if (const char* env = std::getenv("GONDOLIN_DEFAULT_IMAGE"); env && *env) return env;
  return "debian-base:latest";
}

ImageStore::ImageStore(fs::path root) : root_(std::move(root)) {}

ImageStore ImageStore::default_store() { return ImageStore(paths::cache_dir() / "images"); }

std::vector<Image> ImageStore::list() const {
  std::vector<Image> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    if (!entry.is_directory() || entry.path().filename().string().starts_with(".")) continue;
    try {
      out.push_back(load_image_dir(entry.path()));
    } catch (const Error& e) {
      log().warn("skipping {}: {}", entry.path().string(), e.what());
    }
  }
  std::sort(out.begin(), out.end(), [](const Image& a, const Image& b) {
    return a.manifest.created != b.manifest.created ? a.manifest.created > b.manifest.created
                                                    : a.manifest.id < b.manifest.id;
  });
  return out;
}

Image ImageStore::resolve(const std::string& reference) const {
  const std::string ref = reference.empty() ? default_image_reference() : reference;
  if (looks_like_path(ref)) {
    fs::path p(ref);
    if (p.filename() == "manifest.json") p = p.parent_path();
    if (p.empty()) p = ".";
    Image img = load_image_dir(p);
    check_files(img);
    return img;
  }
  // A whole id, or a name whose pointer names a build this gondolin can
  // talk to (every start's case), reads one manifest; the rest parse all.
  if (auto img = stored_image(root_, ref)) {
    check_files(*img);
    return *img;
  }
  std::vector<Image> all;
  if (ref.find(':') == std::string::npos && is_hex_prefix(ref)) {  // ids win over names
    all = list();
    std::vector<const Image*> hits;
    for (const auto& img : all)
      if (img.manifest.id.starts_with(ref)) hits.push_back(&img);
    if (hits.size() > 1)
      throw Error(ErrorKind::Image, "image id prefix '" + ref + "' is ambiguous: " + hits[0]->manifest.id + ", " +
                                        hits[1]->manifest.id + (hits.size() > 2 ? ", ..." : ""));
    if (hits.size() == 1) {
      check_files(*hits[0]);
      return *hits[0];
    }
  }
  auto colon = ref.find(':');
  std::string name = ref.substr(0, colon);
  std::string tag = colon == std::string::npos ? "latest" : ref.substr(colon + 1);
  // The build the name was last given (by build, tag or import), if this
  // gondolin can talk to it.
  if (auto id = image::named_id(root_, name + ":" + tag))
    if (auto img = stored_image(root_, *id);
        img && img->display_name() == name + ":" + tag && img->manifest.agent_protocol == proto::kProtocolVersion) {
      check_files(*img);
      return *img;
    }
  if (all.empty()) all = list();
  // The newest (a name whose pointer is missing or unusable); an older build
  // this gondolin can talk to beats a newer one made by another gondolin.
  const Image* newest = nullptr;
  for (const auto& img : all) {
    if (img.manifest.name != name || (img.manifest.tag.empty() ? "latest" : img.manifest.tag) != tag) continue;
    if (!newest) newest = &img;
    if (img.manifest.agent_protocol == proto::kProtocolVersion) {
      check_files(img);
      return img;
    }
  }
  if (newest) {
    check_files(*newest);  // reports the protocol mismatch
    return *newest;
  }
  throw Error(ErrorKind::Image, "image '" + ref + "' not found in " + root_.string() + "; " + kBuildHint);
}

Image ImageStore::install(const fs::path& staged_dir) const {
  Image staged = load_image_dir(staged_dir);
  fs::create_directories(root_);
  fs::path target = root_ / staged.manifest.id;
  std::error_code ec;
  if (fs::exists(target / "manifest.json", ec)) {
    fs::remove_all(staged_dir, ec);  // identical content is already installed
  } else {
    fs::remove_all(target, ec);
    fs::rename(staged_dir, target);
  }
  Image img = load_image_dir(target);
  point_name_at(img);
  return img;
}

void ImageStore::point_name_at(const Image& img) const {
  if (!img.manifest.name.empty()) image::point_name(root_, img.display_name(), img.manifest.id);
}

Image ImageStore::resolve_for_removal(const std::string& reference) const {
  for (auto& img : list())
    if (img.manifest.id == reference) return img;
  return resolve(reference);
}

void ImageStore::remove(const std::string& reference) const {
  Image img = resolve_for_removal(reference);
  std::error_code ec;
  if (fs::weakly_canonical(img.dir.parent_path(), ec) != fs::weakly_canonical(root_, ec))
    throw Error(ErrorKind::Usage, "refusing to delete " + img.dir.string() + ": it is not in the image store");
  if (!img.manifest.name.empty()) image::drop_name(root_, img.display_name(), img.manifest.id);
  fs::remove_all(img.dir);
}

void ImageStore::verify(const Image& img) {
  check_files(img);
  for (const ImageFile* f : {&img.manifest.kernel, &img.manifest.initramfs, &img.manifest.rootfs}) {
    std::string actual = sha256_file_hex(img.dir / f->file);
    if (actual != f->sha256)
      throw Error(ErrorKind::Image, "image " + img.display_name() + ": " + f->file + " has sha256 " + actual +
                                        ", the manifest says " + f->sha256);
  }
}

std::vector<Image> ImageStore::prunable(const std::set<std::string>& in_use) const {
  std::set<std::string> keep = in_use;
  keep.merge(image::named_ids(root_));  // what a name was last given
  return image::images_to_prune(list(), keep, proto::kProtocolVersion);
}

}  // namespace gondolin
