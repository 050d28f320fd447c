// OCI images as a user brings them: an image layout directory and a
// `docker save` archive, made here from a small layered root (the host's
// Debian busybox-static, whiteouts, an opaque directory, a hard link), built
// with `gondolin build` and booted; hostile layers refused in one line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_expect.h"
#include "oci_fixture.h"
#include "test_support.h"
#include "util/files.h"

using namespace gondolin::testing;
using gondolin::TarEntry;
namespace fs = std::filesystem;

namespace {

// Two layers: a busybox root with a user, then changes to it.
OciFixture layered_busybox_image() {
  OciFixture img;
  std::vector<TarEntry> base{TarEntry::dir("bin"),
                             TarEntry::file("bin/busybox", gondolin::read_file("/bin/busybox"), 0755)};
  for (const char* applet : {"sh", "id", "pwd", "cat", "ls", "stat", "test", "echo", "env", "mkdir", "sleep"})
    base.push_back(TarEntry::symlink(std::string("bin/") + applet, "busybox"));
  base.push_back(
      TarEntry::file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n"));
  base.push_back(TarEntry::file("etc/group", "root:x:0:\napp:x:1000:\n"));
  base.push_back(TarEntry::file("etc/removed", "lower layer\n"));
  base.push_back(TarEntry::file("opt/old/stale", "lower layer\n"));
  TarEntry home = TarEntry::dir("home/app");
  home.uid = home.gid = 1000;
  base.push_back(TarEntry::dir("home"));
  base.push_back(home);
  img.layers.push_back(base);
  img.layers.push_back({TarEntry::file("etc/.wh.removed", ""), TarEntry::file("opt/old/.wh..wh..opq", ""),
                        TarEntry::file("opt/old/new", "upper layer\n"), TarEntry::file("data/a", "shared\n"),
                        TarEntry::hard_link("data/b", "data/a")});
  img.config = {
      {"Env", {"PATH=/bin", "GREETING=from-oci", "FROM_SPEC=image"}}, {"WorkingDir", "/home/app"}, {"User", "app"}};
  return img;
}

fs::path write_spec(const fs::path& dir, const std::string& oci) {
  fs::path spec = dir / "spec.json";
  std::ofstream(spec) << R"({"oci": )" << oci << R"(, "env": {"FROM_SPEC": "spec"}, "rootfs_free_mib": 64})";
  return spec;
}

CliResult build(const fs::path& spec, const std::string& tag, const fs::path& work_dir = {}) {
  std::vector<std::string> args{"build", spec.string(), "--tag", tag, "--quiet"};
  if (!work_dir.empty()) args.insert(args.end(), {"--work-dir", work_dir.string()});
  return run_gondolin(args, CliOptions{"", {}, {}, std::chrono::seconds(600), {}});
}

const char* kProbe =
    "echo \"$GREETING $FROM_SPEC $HOME\"; pwd; id -u; id -g; cat /data/a; stat -c %h /data/b; ls /opt/old; "
    "test -e /etc/removed || echo removed; stat -c '%u %a' /home/app; echo x > /home/app/f && echo writable";
const char* kExpected = "from-oci spec /home/app\n/home/app\n1000\n1000\nshared\n2\nnew\nremoved\n1000 755\nwritable\n";

}  // namespace

TEST(OciImage, LayoutBootsWithItsConfigEnvWorkdirAndUser) {
  TempDir tmp;
  std::string digest = layered_busybox_image().write_layout(tmp.path() / "layout");
  auto b = build(write_spec(tmp.path(), R"({"layout": "layout", "ref": "latest"})"), "gondolin-test-oci:layout");
  ASSERT_EQ(b.exit_code, 0) << b.err;

  auto r = run_gondolin({"exec", "--image", "gondolin-test-oci:layout", "--", "sh", "-c", kProbe});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, kExpected);
  // Flags override the image's defaults.
  auto root = run_gondolin(
      {"exec", "--image", "gondolin-test-oci:layout", "--user", "root", "-w", "/tmp", "--", "sh", "-c", "id -u; pwd"});
  ASSERT_EQ(root.exit_code, 0) << root.err;
  EXPECT_EQ(root.out, "0\n/tmp\n");
  // The manifest records which OCI image the root came from.
  auto inspect = run_gondolin({"image", "inspect", "gondolin-test-oci:layout"});
  EXPECT_NE(inspect.out.find("\"oci_digest\": \"" + digest + "\""), std::string::npos) << inspect.out;
}

TEST(OciImage, DockerSaveArchiveBoots) {
  TempDir tmp;
  // A WorkingDir the image lacks is made, as a container runtime would.
  OciFixture img = layered_busybox_image();
  img.config["WorkingDir"] = "/srv/app";
  img.config["User"] = "1000";
  gondolin::write_file_atomic(tmp.path() / "app.tar", img.docker_save("app:1"));
  auto b = build(write_spec(tmp.path(), R"({"archive": "app.tar", "ref": "app:1"})"), "gondolin-test-oci:archive");
  ASSERT_EQ(b.exit_code, 0) << b.err;
  auto r =
      run_gondolin({"exec", "--image", "gondolin-test-oci:archive", "--", "sh", "-c",
                    "echo \"$GREETING $FROM_SPEC $HOME\"; pwd; id -u; id -g; cat /data/a; stat -c '%u %a' /srv/app"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "from-oci spec /home/app\n/srv/app\n1000\n1000\nshared\n0 755\n");
}

TEST(OciImage, HostileOrDamagedImagesAreRefusedAndLeaveNothing) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "outside");
  OciFixture evil = layered_busybox_image();
  evil.layers.push_back({TarEntry::symlink("escape", (tmp.path() / "outside").string())});
  evil.layers.push_back({TarEntry::file("escape/pwned", "from a layer\n")});
  evil.write_layout(tmp.path() / "layout");
  // Other tests build images into the same store meanwhile (ctest -j2): this
  // one checks what it could have left, in a work directory of its own.
  const fs::path work = tmp.path() / "work";
  const std::string images_before = run_gondolin({"image", "ls"}).out;
  fs::path spec = write_spec(tmp.path(), R"({"layout": "layout"})");
  expect_one_line_error(build(spec, "gondolin-test-oci:evil", work), "goes through the symlink \"escape\"");
  EXPECT_TRUE(fs::is_empty(tmp.path() / "outside"));

  OciFixture device = layered_busybox_image();
  TarEntry node = TarEntry::file("dev/sda", "");
  node.type = S_IFBLK;
  device.layers.push_back({node});
  fs::remove_all(tmp.path() / "layout");
  device.write_layout(tmp.path() / "layout");
  expect_one_line_error(build(spec, "gondolin-test-oci:evil", work), "device node \"dev/sda\"");

  // A layer changed after its digest was written.
  OciFixture plain = layered_busybox_image();
  fs::remove_all(tmp.path() / "layout");
  plain.write_layout(tmp.path() / "layout");
  for (const auto& e : fs::directory_iterator(tmp.path() / "layout/blobs/sha256"))
    if (fs::file_size(e.path()) > 100000) {
      std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(5000);
      f << "tampered";  // same size, other bytes
    }
  expect_one_line_error(build(spec, "gondolin-test-oci:evil", work), "does not match its digest");

  const std::string images_after = run_gondolin({"image", "ls"}).out;
  EXPECT_EQ(images_after.find("gondolin-test-oci:evil"), std::string::npos) << images_after;
  std::istringstream before(images_before);
  // Other tests' scratch images (gondolin-test-*) come and go meanwhile
  // when ctest runs tests in parallel; every other image must still be there.
  for (std::string line; std::getline(before, line);) {
    if (line.find(" gondolin-test-") != std::string::npos) continue;
    EXPECT_NE(images_after.find(line), std::string::npos) << "gone from the store: " << line;
  }
  // No half-built root or unpacked archive is left in the work directory.
  for (const auto& e : fs::directory_iterator(fs::exists(work) ? work : tmp.path())) {
    std::string name = e.path().filename().string();
    bool scratch = name.ends_with(".tree") || name.ends_with(".tmp") || name.rfind("oci-", 0) == 0;
    EXPECT_FALSE(scratch) << "left behind: " << e.path();
  }
}
