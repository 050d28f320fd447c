// A name:tag means the build it was last given (by build, tag or import),
// not merely the newest build: two work directories building the same name
// must not leave `gondolin build` reporting an id its name does not resolve to.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "gondolin/error.h"
#include "gondolin/image.h"
#include "image/name_index.h"
#include "proto/protocol_version.h"
#include "util/sha256.h"
#include "vfs/temp_dir.h"

using namespace gondolin;
namespace fs = std::filesystem;

namespace {

// Stages a small but valid image named debian-base:latest, made at `created`.
fs::path stage(const fs::path& root, const std::string& created, const std::string& payload) {
  fs::path dir = root / (".staging-" + created);
  fs::create_directories(dir);
  ImageManifest m;
  m.name = "debian-base";
  m.tag = "latest";
  m.arch = "x86_64";
  m.created = created;
  m.kernel_release = "6.1.0";
  m.kernel_format = "elf";
  m.rootfs_format = "ext4";
  m.cmdline = "quiet";
  m.agent_protocol = proto::kProtocolVersion;
  m.spec_json = "{}";
  for (auto [f, name] :
       {std::pair{&m.kernel, "kernel"}, {&m.initramfs, "initramfs.cpio"}, {&m.rootfs, "rootfs.ext4"}}) {
    std::ofstream(dir / name) << payload << name;
    f->file = name;
    f->sha256 = sha256_hex(payload + name);
    f->size = payload.size() + std::string(name).size();
  }
  m.id = m.compute_id();
  std::ofstream(dir / "manifest.json") << m.to_json();
  return dir;
}

// Two builds of debian-base:latest in `store`, the older first.
std::pair<Image, Image> install_two_builds(ImageStore& store, const fs::path& root) {
  Image older = store.install(stage(root, "2026-12-01T00:00:00Z", "a"));
  Image newer = store.install(stage(root, "2026-12-02T00:00:00Z", "b"));
  return {older, newer};
}

TEST(ImageNames, ANameMeansTheBuildItWasLastGiven) {
  vfs::testing::TempDir tmp;
  ImageStore store(tmp.path());
  auto [older, newer] = install_two_builds(store, tmp.path());
  EXPECT_EQ(store.resolve("debian-base:latest").manifest.id, newer.manifest.id);
  // Another work directory finds its older build up to date, or installs it again.
  store.point_name_at(older);
  EXPECT_EQ(store.resolve("debian-base").manifest.id, older.manifest.id);
  EXPECT_EQ(store.install(stage(tmp.path(), "2026-12-02T00:00:00Z", "b")).manifest.id, newer.manifest.id);
  EXPECT_EQ(store.resolve("debian-base:latest").manifest.id, newer.manifest.id);
  store.point_name_at(older);
  // Prune keeps both: the newest, and the one the name means.
  EXPECT_TRUE(store.prunable({}).empty());
  // Removing the named build leaves the newest-build rule.
  store.remove(older.manifest.id);
  EXPECT_EQ(image::named_id(tmp.path(), "debian-base:latest"), std::nullopt);
  EXPECT_EQ(store.resolve("debian-base:latest").manifest.id, newer.manifest.id);
}

TEST(ImageNames, DamagedOrForeignPointersCountAsNone) {
  vfs::testing::TempDir tmp;
  ImageStore store(tmp.path());
  auto [older, newer] = install_two_builds(store, tmp.path());
  store.point_name_at(older);
  const fs::path names = tmp.path() / ".names";
  ASSERT_EQ(std::distance(fs::directory_iterator(names), fs::directory_iterator()), 1);
  const fs::path pointer = fs::directory_iterator(names)->path();
  for (const std::string& text :
       {std::string("not hex\ndebian-base:latest\n"), older.manifest.id + "\nother:latest\n",
        std::string("0123456789abcdef\ndebian-base:latest\n"), std::string(""), std::string(10000, 'a')}) {
    std::ofstream(pointer, std::ios::trunc) << text;
    EXPECT_EQ(store.resolve("debian-base:latest").manifest.id, newer.manifest.id) << text.substr(0, 40);
  }
  fs::remove_all(names);
  std::ofstream(names) << "a file where the directory was";
  store.point_name_at(older);  // cannot write: quietly keeps the newest-build rule
  EXPECT_EQ(store.resolve("debian-base:latest").manifest.id, newer.manifest.id);
}

// Every start resolves its image: a whole id, or a name whose pointer is
// usable, reads that image's manifest only (a store of many images cost
// each start ~10 ms of parsing); a directory whose manifest names another
// id is never taken for that id.
TEST(ImageNames, AnIdOrAPointedNameReadsOneManifest) {
  vfs::testing::TempDir tmp;
  ImageStore store(tmp.path());
  auto [older, newer] = install_two_builds(store, tmp.path());
  store.point_name_at(older);
  std::ofstream(newer.dir / "manifest.json", std::ios::trunc) << "{ damaged";
  EXPECT_EQ(store.resolve(older.manifest.id).manifest.id, older.manifest.id);
  EXPECT_EQ(store.resolve("debian-base:latest").manifest.id, older.manifest.id);
  const std::string impostor = "0123456789abcdef";
  fs::create_directories(tmp.path() / impostor);
  fs::copy_file(older.dir / "manifest.json", tmp.path() / impostor / "manifest.json");
  EXPECT_THROW(store.resolve(impostor), Error);
}

}  // namespace
