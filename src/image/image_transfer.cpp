// Moving images between names and machines: `image tag`, `image export`,
// `image import`.
//
// An exported image is a zstd-compressed tar of exactly the image's four
// files (manifest.json, kernel, initramfs, root file system), written by the
// host's tar. An archive to import is untrusted: its listing must name those
// files as plain regular files and nothing else, it is unpacked into a fresh
// staging directory inside the store, every file is checked against the
// manifest's sha256 and the manifest's id against its contents, and only then
// is the directory renamed into place. Anything else leaves nothing behind.
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <sstream>
#include <tuple>

#include "gondolin/error.h"
#include "gondolin/image.h"
#include "image/build_spec.h"
#include "util/files.h"
#include "util/random_hex.h"
#include "util/subprocess.h"

namespace gondolin {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kMaxManifestBytes = 1 << 20;

std::vector<std::string> image_file_names(const ImageManifest& m) {
  return {"manifest.json", m.kernel.file, m.initramfs.file, m.rootfs.file};
}

// A staging directory inside the store (same file system: rename and hard
// links work); removed unless released.
class Staging {
 public:
  explicit Staging(const fs::path& store_root) {
    fs::create_directories(store_root);
    dir_ = store_root / (".staging-import-" + std::to_string(::getpid()) + "-" + random_hex(6));
    if (::mkdir(dir_.c_str(), 0700) != 0) throw Error(ErrorKind::Io, "cannot create " + dir_.string());
  }
  ~Staging() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
};

// Hard link where possible (same file system; the files are read-only), else copy.
void link_or_copy(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (ec) fs::copy_file(from, to);
}

// Rewrites the staged manifest `m` under another name:tag (a new id).
void rename_staged(const fs::path& dir, ImageManifest m, const std::string& name_tag) {
  std::tie(m.name, m.tag) = parse_name_tag(name_tag, "tag");
  m.id = m.compute_id();
  fs::remove(dir / "manifest.json");
  write_file_atomic(dir / "manifest.json", m.to_json(),
                    fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
}

// The archive's members: every one a regular file with a plain name from
// `allowed`, each at most once. Throws naming the first that is not.
void check_listing(const fs::path& archive, const std::set<std::string>& allowed) {
  CommandResult r = run_command({"tar", "--zstd", "--quoting-style=escape", "-tvf", archive.string()}, {}, 64 * 1024);
  if (!r.ok()) throw Error(ErrorKind::Image, archive.string() + " is not a gondolin image archive (not a zstd tar)");
  std::istringstream lines(r.output);
  std::set<std::string> seen;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    std::string name = line.substr(line.find_last_of(' ') + 1);
    if (line[0] != '-' || !allowed.count(name) || !seen.insert(name).second)
      throw Error(ErrorKind::Image, archive.string() + " is not a gondolin image archive: unexpected member '" +
                                        line.substr(0, 200) + "'");
  }
  if (!seen.count("manifest.json")) throw Error(ErrorKind::Image, archive.string() + " has no manifest.json");
}

// Checks a staged image completely: plain files only, hashes, and an id
// that matches the contents. Returns its manifest.
ImageManifest check_staged(const fs::path& dir, const std::string& origin) {
  std::error_code ec;
  auto size = fs::file_size(dir / "manifest.json", ec);
  if (ec || size > kMaxManifestBytes) throw Error(ErrorKind::Image, origin + ": manifest.json is missing or too large");
  ImageManifest m = ImageManifest::parse(read_file(dir / "manifest.json"), origin);
  for (const auto& name : image_file_names(m)) {
    struct stat st {};
    if (::lstat((dir / name).c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      throw Error(ErrorKind::Image, origin + ": " + name + " is missing or not a regular file");
  }
  // The cheap check first: a manifest edited by hand no longer matches its id.
  if (m.id != m.compute_id())
    throw Error(ErrorKind::Image, origin + ": the manifest's id " + m.id + " does not match its contents");
  ImageStore::verify(Image{dir, m});
  return m;
}

}  // namespace

Image ImageStore::tag(const std::string& reference, const std::string& name_tag) const {
  parse_name_tag(name_tag, "tag");  // refused before anything is written
  Image img = resolve(reference);
  Staging staging(root_);
  for (const auto& name : image_file_names(img.manifest)) link_or_copy(img.dir / name, staging.dir() / name);
  rename_staged(staging.dir(), img.manifest, name_tag);
  ::chmod(staging.dir().c_str(), 0755);
  return install(staging.dir());
}

void ImageStore::export_to(const std::string& reference, const fs::path& archive) const {
  Image img = resolve(reference);
  verify(img);
  std::error_code ec;
  if (fs::exists(archive, ec)) throw Error(ErrorKind::Usage, archive.string() + " exists; refusing to overwrite it");
  fs::path tmp = archive;
  tmp += ".partial";
  std::vector<std::string> argv{"tar", "--zstd",     "--sparse", "--owner=0",     "--group=0", "--numeric-owner",
                                "-cf", tmp.string(), "-C",       img.dir.string()};
  for (const auto& name : image_file_names(img.manifest)) argv.push_back(name);
  CommandResult r = run_command(argv);
  if (!r.ok()) {
    fs::remove(tmp, ec);
    throw Error(ErrorKind::Io, "cannot write " + archive.string() + ": " + r.output.substr(0, 300));
  }
  fs::rename(tmp, archive);
}

Image ImageStore::import_from(const fs::path& source, const std::string& name_tag) const {
  if (!name_tag.empty()) parse_name_tag(name_tag, "--tag");
  std::error_code ec;
  if (!fs::exists(source, ec)) throw Error(ErrorKind::Usage, source.string() + " does not exist");
  Staging staging(root_);
  if (fs::is_directory(source, ec)) {
    auto size = fs::file_size(source / "manifest.json", ec);
    if (ec || size > kMaxManifestBytes) throw Error(ErrorKind::Image, "no image at " + source.string());
    ImageManifest m = ImageManifest::parse(read_file(source / "manifest.json"), source.string());
    for (const auto& name : image_file_names(m)) fs::copy_file(source / name, staging.dir() / name);
  } else {
    check_listing(source, {"manifest.json", "kernel", "initramfs.cpio", "rootfs.ext4"});
    CommandResult r = run_command({"tar", "--zstd", "--no-same-owner", "--no-same-permissions", "-xf", source.string(),
                                   "-C", staging.dir().string()});
    if (!r.ok()) throw Error(ErrorKind::Image, "cannot unpack " + source.string() + ": " + r.output.substr(0, 300));
  }
  ImageManifest staged = check_staged(staging.dir(), source.string());
  if (!name_tag.empty()) rename_staged(staging.dir(), std::move(staged), name_tag);
  for (const auto& e : fs::directory_iterator(staging.dir()))
    fs::permissions(e.path(), fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  ::chmod(staging.dir().c_str(), 0755);  // as a built image's directory
  return install(staging.dir());
}

}  // namespace gondolin
