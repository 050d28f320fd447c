// `image tag`, `image export`, `image import` as a user moving an image to
// another machine sees them, and archives that must be refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli_expect.h"
#include "gondolin/image.h"
#include "test_support.h"

using namespace gondolin::testing;
namespace fs = std::filesystem;

namespace {

// Nothing half-imported is left in the store.
void expect_no_staging_left(const fs::path& store) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(store, ec))
    EXPECT_EQ(e.path().filename().string().rfind(".staging-import-", 0), std::string::npos) << e.path();
}

}  // namespace

TEST(ImageTransfer, ExportRemoveImportRoundTripsAndBoots) {
  TempDir tmp;
  ASSERT_EQ(run_gondolin({"image", "tag", "debian-base:latest", "gondolin-test-transfer:v1"}).exit_code, 0);
  const fs::path archive = tmp.path() / "img.tar.zst";
  auto exp = run_gondolin({"image", "export", "gondolin-test-transfer:v1", archive.string()});
  ASSERT_EQ(exp.exit_code, 0) << exp.err;
  expect_one_line_error(run_gondolin({"image", "export", "gondolin-test-transfer:v1", archive.string()}),
                        "exists; refusing to overwrite it");
  ASSERT_EQ(run_gondolin({"image", "rm", "gondolin-test-transfer:v1"}).exit_code, 0);
  expect_one_line_error(run_gondolin({"exec", "--image", "gondolin-test-transfer:v1", "--", "true"}),
                        "gondolin-test-transfer:v1");
  auto imp = run_gondolin({"image", "import", archive.string()});
  ASSERT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_NE(imp.out.find(" gondolin-test-transfer:v1 "), std::string::npos) << imp.out;
  auto r = run_gondolin({"exec", "--image", "gondolin-test-transfer:v1", "--", "echo", "imported"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "imported\n");
  auto renamed = run_gondolin({"image", "import", archive.string(), "--tag", "gondolin-test-transfer:v2"});
  EXPECT_EQ(renamed.exit_code, 0) << renamed.err;
  EXPECT_NE(renamed.out.find(" gondolin-test-transfer:v2 "), std::string::npos) << renamed.out;
  run_gondolin({"image", "rm", "gondolin-test-transfer:v1"});
  run_gondolin({"image", "rm", "gondolin-test-transfer:v2"});
}

TEST(ImageTransfer, HostileOrDamagedArchivesAreRefusedAndLeaveNothing) {
  // An image's files without its bulk: kernel and initramfs copied, the root
  // file system a sparse file of the recorded size (every check that could
  // read it fails earlier), so building eight archives costs seconds.
  TempDir tmp;
  // The imports go to a store of their own: another test importing at the
  // same time must not be mistaken for a leftover here.
  CliOptions own_store;
  own_store.env["XDG_CACHE_HOME"] = (tmp.path() / "cache").string();
  auto import = [&](const std::string& archive) { return run_gondolin({"image", "import", archive}, own_store); };
  const fs::path unpacked = tmp.path() / "unpacked";
  fs::create_directories(unpacked);
  const fs::path image = gondolin::ImageStore::default_store().resolve("debian-base:latest").dir;
  host_sh("cd " + unpacked.string() + " && cp " + image.string() + "/manifest.json " + image.string() + "/kernel " +
          image.string() + "/initramfs.cpio . && truncate -r " + image.string() +
          "/rootfs.ext4 rootfs.ext4 && chmod u+w *");
  auto pack = [&](const std::string& name, const std::string& prepare) {
    fs::path dir = tmp.path() / name;
    host_sh("cp -a " + unpacked.string() + " " + dir.string() + " && cd " + dir.string() + " && " + prepare);
    fs::path archive = tmp.path() / (name + ".tar.zst");
    host_sh("cd " + dir.string() + " && tar --zstd --sparse -cf " + archive.string() + " *");
    return archive.string();
  };
  expect_one_line_error(import(pack("symlink", "rm kernel && ln -s /etc/passwd kernel")), "unexpected member");
  expect_one_line_error(import(pack("extra", "mkdir -p sub && echo x > sub/evil && echo y > extra")),
                        "unexpected member");
  const fs::path dotdot = tmp.path() / "dotdot.tar.zst";
  host_sh("cd " + unpacked.string() + " && tar --zstd -cf " + dotdot.string() +
          " manifest.json --transform='s,^manifest.json$,../manifest.json,' manifest.json");
  expect_one_line_error(import(dotdot.string()), "unexpected member");
  expect_one_line_error(
      import(pack("corrupt", "printf X | dd of=initramfs.cpio bs=1 seek=4096 conv=notrunc 2>/dev/null")),
      "initramfs.cpio has sha256");
  expect_one_line_error(
      import(pack("foreign", "sed -i 's/\"name\": \"debian-base\"/\"name\": \"other\"/' manifest.json")),
      "does not match its contents");
  expect_one_line_error(import(pack("no-manifest", "rm manifest.json")), "no manifest.json");
  { std::ofstream(tmp.path() / "junk.tar.zst") << "not an archive"; }
  expect_one_line_error(import((tmp.path() / "junk.tar.zst").string()), "is not a gondolin image archive");
  expect_one_line_error(run_gondolin({"image", "tag", "debian-base:latest", "bad name"}), "invalid tag 'bad name'");
  expect_no_staging_left(tmp.path() / "cache" / "gondolin" / "images");
}

TEST(ImageTransfer, BuildOutputIsAnImageDirectory) {
  TempDir tmp;
  // The setup's own build cache: an unchanged build takes seconds.
  const fs::path work = gondolin_binary().parent_path().parent_path() / "image-cache";
  const fs::path out = tmp.path() / "out";
  auto build = run_gondolin({"build", "--work-dir", work.string(), "-q", "--output", out.string()},
                            CliOptions{"", {}, {}, std::chrono::seconds(900), {}});
  ASSERT_EQ(build.exit_code, 0) << build.err;
  EXPECT_NE(build.out.find(out.string()), std::string::npos) << build.out;
  auto r = run_gondolin({"exec", "--image", out.string(), "--", "echo", "from-output"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "from-output\n");
  expect_one_line_error(run_gondolin({"build", "--work-dir", work.string(), "-q", "--output", out.string()}),
                        "exists and is not an empty directory");
}
