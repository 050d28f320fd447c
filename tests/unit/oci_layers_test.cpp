// Container image layers applied onto a root (image/layer_unpacker.h) and
// saved images read (image/oci_image.h): real tars made with libarchive.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gondolin/error.h"
#include "image/layer_unpacker.h"
#include "image/oci_image.h"
#include "image/rootfs_tree.h"
#include "oci_fixture.h"
#include "util/files.h"
#include "util/subprocess.h"

namespace gondolin {
namespace {

namespace fs = std::filesystem;
using testing::OciFixture;

class OciLayers : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = fs::temp_directory_path() / ("gondolin-oci-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(base_);
    fs::create_directories(root());
    fs::create_directories(outside());
  }
  void TearDown() override { fs::remove_all(base_); }
  fs::path root() const { return base_ / "root"; }
  fs::path outside() const { return base_ / "outside"; }

  std::optional<std::string> apply(LayerUnpacker& u, const std::vector<TarEntry>& entries,
                                   TarWriter::Compression c = TarWriter::Compression::None) {
    std::string tar = OciFixture::tar(entries, c);
    return u.apply_memory(tar.data(), tar.size(), "layer");
  }
  bool outside_untouched() const { return fs::is_empty(outside()); }

  fs::path base_;
};

TEST_F(OciLayers, KeepsFilesLinksModesOwnersAndXattrs) {
  LayerUnpacker u(root());
  TarEntry tool = TarEntry::file("usr/bin/tool", "#!/bin/sh\necho hi\n", 04755);
  tool.uid = 1000;
  tool.gid = 50;
  tool.xattrs = {{"user.origin", "layer1"}};
  TarEntry fifo = TarEntry::file("run/pipe", "");
  fifo.type = S_IFIFO;
  ASSERT_EQ(apply(u,
                  {TarEntry::dir("usr"), TarEntry::dir("usr/bin"), tool, TarEntry::symlink("bin", "usr/bin"),
                   TarEntry::hard_link("usr/bin/tool2", "usr/bin/tool"), fifo},
                  TarWriter::Compression::Gzip),
            std::nullopt);
  struct stat st {
  }, st2{};
  ASSERT_EQ(::lstat((root() / "usr/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(read_file(root() / "usr/bin/tool"), "#!/bin/sh\necho hi\n");
  ASSERT_EQ(::lstat((root() / "usr/bin/tool2").c_str(), &st2), 0);
  EXPECT_EQ(st.st_ino, st2.st_ino);
  EXPECT_EQ(fs::read_symlink(root() / "bin"), "usr/bin");
  EXPECT_TRUE(fs::is_fifo(fs::symlink_status(root() / "run/pipe")));
  if (::geteuid() == 0) {
    EXPECT_EQ(st.st_uid, 1000u);
    EXPECT_EQ(st.st_gid, 50u);
    EXPECT_TRUE(u.ownership_fixups().empty());
  } else {
    EXPECT_FALSE(u.ownership_fixups().empty());
  }
  char value[32] = {};
  ssize_t n = ::getxattr((root() / "usr/bin/tool").c_str(), "user.origin", value, sizeof value);
  if (n >= 0) {
    EXPECT_EQ(std::string(value, static_cast<std::size_t>(n)), "layer1");
  }
}

TEST_F(OciLayers, WhiteoutsAndOpaqueDirectoriesHideOnlyLowerLayers) {
  LayerUnpacker u(root());
  ASSERT_EQ(
      apply(u, {TarEntry::file("etc/gone", "x"), TarEntry::file("etc/kept", "x"), TarEntry::file("var/cache/a", "old"),
                TarEntry::file("var/cache/sub/b", "old"), TarEntry::file("opt/dir/file", "x")}),
      std::nullopt);
  ASSERT_EQ(apply(u,
                  {TarEntry::file("etc/.wh.gone", ""), TarEntry::file("opt/.wh.dir", ""),
                   TarEntry::file("var/cache/new", "this layer"), TarEntry::file("var/cache/.wh..wh..opq", ""),
                   TarEntry::file("var/cache/sub/c", "this layer too"), TarEntry::file("etc/.wh.never-there", "")},
                  TarWriter::Compression::Zstd),
            std::nullopt);
  EXPECT_FALSE(fs::exists(root() / "etc/gone"));
  EXPECT_TRUE(fs::exists(root() / "etc/kept"));
  EXPECT_FALSE(fs::exists(root() / "opt/dir"));
  EXPECT_FALSE(fs::exists(root() / "var/cache/a"));
  EXPECT_FALSE(fs::exists(root() / "var/cache/sub/b"));
  EXPECT_EQ(read_file(root() / "var/cache/new"), "this layer");
  EXPECT_EQ(read_file(root() / "var/cache/sub/c"), "this layer too");
  EXPECT_FALSE(fs::exists(root() / "var/cache/.wh..wh..opq"));
  EXPECT_FALSE(fs::exists(root() / "etc/.wh.gone"));
}

TEST_F(OciLayers, ReplacingAnEntryNeverWritesThroughALinkOfALowerLayer) {
  LayerUnpacker u(root());
  ASSERT_EQ(apply(u, {TarEntry::file("a", "shared"), TarEntry::hard_link("b", "a"), TarEntry::symlink("c", "a"),
                      TarEntry::dir("d"), TarEntry::file("d/inner", "x")}),
            std::nullopt);
  ASSERT_EQ(apply(u, {TarEntry::file("b", "new b"), TarEntry::file("c", "new c"), TarEntry::file("d", "now a file")}),
            std::nullopt);
  EXPECT_EQ(read_file(root() / "a"), "shared");
  EXPECT_EQ(read_file(root() / "b"), "new b");
  EXPECT_FALSE(fs::is_symlink(root() / "c"));
  EXPECT_EQ(read_file(root() / "d"), "now a file");
}

TEST_F(OciLayers, HostilePathsAndTypesAreRefusedWithOneLine) {
  struct Case {
    const char* name;
    std::vector<TarEntry> lower, layer;
    const char* expect;
  };
  TarEntry device = TarEntry::file("dev/sda", "");
  device.type = S_IFBLK;
  std::string out = outside().string();
  std::vector<Case> cases = {
      {"absolute", {}, {TarEntry::file(out + "/x", "pwned")}, "absolute path"},
      {"dotdot", {}, {TarEntry::file("a/../../outside/x", "pwned")}, "leaves the root"},
      {"symlink-abs",
       {TarEntry::symlink("evil", out)},
       {TarEntry::file("evil/x", "pwned")},
       "goes through the symlink"},
      {"symlink-rel",
       {TarEntry::symlink("evil", "../outside")},
       {TarEntry::file("evil/x", "pwned")},
       "goes through the symlink"},
      {"symlink-same-layer",
       {},
       {TarEntry::symlink("e", out), TarEntry::file("e/x", "pwned")},
       "goes through the symlink"},
      {"hardlink-outside",
       {TarEntry::symlink("evil", out)},
       {TarEntry::hard_link("x", "evil/secret")},
       "goes through the symlink"},
      {"hardlink-missing", {}, {TarEntry::hard_link("x", "nope")}, "does not exist"},
      {"device", {}, {device}, "device node"},
      {"whiteout-through-symlink",
       {TarEntry::symlink("evil", out)},
       {TarEntry::file("evil/.wh.keep", "")},
       "goes through the symlink"},
  };
  write_file_atomic(outside() / "keep", "host file");
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::remove_all(root());
    fs::create_directories(root());
    LayerUnpacker u(root());
    ASSERT_EQ(apply(u, c.lower), std::nullopt);
    auto refusal = apply(u, c.layer);
    ASSERT_TRUE(refusal.has_value());
    EXPECT_NE(refusal->find(c.expect), std::string::npos) << *refusal;
    EXPECT_EQ(refusal->find('\n'), std::string::npos);
    EXPECT_EQ(refusal->rfind("layer: ", 0), 0u) << *refusal;
    EXPECT_EQ(read_file(outside() / "keep"), "host file");
    EXPECT_FALSE(fs::exists(outside() / "x"));
  }
}

TEST_F(OciLayers, GarbageAndOversizedLayersAreRefused) {
  LayerUnpacker u(root());
  std::string junk(4096, 'z');
  auto r = u.apply_memory(junk.data(), junk.size(), "layer 1");
  ASSERT_TRUE(r.has_value());
  EXPECT_NE(r->find("not a readable tar layer"), std::string::npos) << *r;
  LayerUnpacker small(root(), LayerLimits{1000, 100});
  auto big = apply(small, {TarEntry::file("big", std::string(2000, 'x'))});
  ASSERT_TRUE(big.has_value());
  EXPECT_NE(big->find("GiB"), std::string::npos) << *big;
}

// Without root the unpacker cannot chown or set security.* xattrs: it records
// them, and the ext4 image gets them through debugfs. (As root the test runs
// that part as nobody.)
TEST_F(OciLayers, OwnersTheProcessCannotSetAreSetInTheImage) {
  fs::path image = base_ / "root.ext4";
  fs::permissions(base_, fs::perms::all);
  fs::permissions(root(), fs::perms::all);
  auto build = [&] {
    LayerUnpacker u(root());
    TarEntry tool = TarEntry::file("usr/bin/tool", "x", 04755);
    tool.uid = 1234;
    tool.gid = 56;
    tool.xattrs = {
        {"security.capability",
         std::string("\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20)}};
    std::string tar = OciFixture::tar({tool}, TarWriter::Compression::None);
    if (u.apply_memory(tar.data(), tar.size(), "layer") || u.ownership_fixups().empty()) return false;
    write_ext4_image(root(), image, 8, &u, [](const std::vector<std::string>& argv, const std::string& what) {
      if (!run_command(argv).ok()) throw Error(ErrorKind::Image, what + " failed");
    });
    return true;
  };
  if (::geteuid() != 0) {
    ASSERT_TRUE(build());
  } else {
    pid_t pid = ::fork();
    if (pid == 0) {
      bool ok = ::setgid(65534) == 0 && ::setuid(65534) == 0;
      try {
        ok = ok && build();
      } catch (...) {
        ok = false;
      }
      ::_exit(ok ? 0 : 1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the build as nobody failed";
  }
  CommandResult st = run_command({"debugfs", "-R", "stat /usr/bin/tool", image.string()});
  EXPECT_NE(st.output.find("User:  1234   Group:    56"), std::string::npos) << st.output;
  EXPECT_NE(st.output.find("Mode:  04755"), std::string::npos) << st.output;
  CommandResult ea = run_command({"debugfs", "-R", "ea_list /usr/bin/tool", image.string()});
  EXPECT_NE(ea.output.find("security.capability"), std::string::npos) << ea.output;
}

TEST_F(OciLayers, LayoutIsReadAndVerified) {
  OciFixture img;
  img.layers = {
      {TarEntry::file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n")}};
  img.config = {{"Env", {"PATH=/usr/bin:/bin", "GREETING=hello world"}}, {"WorkingDir", "/srv"}, {"User", "app"}};
  fs::path layout = base_ / "layout";
  std::string digest = img.write_layout(layout);
  OciImage read = read_oci_layout(layout, "latest");
  EXPECT_EQ(read.digest, digest);
  ASSERT_EQ(read.layers.size(), 1u);
  EXPECT_EQ(read.workdir, "/srv");
  EXPECT_EQ(read.user, "app");
  ASSERT_EQ(read.env.size(), 2u);
  EXPECT_EQ(read.env[1].second, "hello world");
  EXPECT_EQ(read_oci_layout(layout, "").digest, digest);  // the only image

  LayerUnpacker u(root());
  ASSERT_EQ(u.apply_file(read.layers[0].path(), "layer 1"), std::nullopt);
  std::string home;
  GuestUser user = resolve_image_user(root(), "app", home);
  EXPECT_EQ(user, (GuestUser{1000, 1001}));
  EXPECT_EQ(home, "/home/app");
  EXPECT_EQ(resolve_image_user(root(), "1000:7", home), (GuestUser{1000, 7}));
  EXPECT_THROW(resolve_image_user(root(), "nobody", home), Error);
}

TEST_F(OciLayers, BadLayoutsAreOneLineErrors) {
  OciFixture img;
  img.layers = {{TarEntry::file("a", "x")}};
  fs::path layout = base_ / "layout";
  img.write_layout(layout);
  auto error_of = [&](const std::string& ref) {
    try {
      read_oci_layout(layout, ref);
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(error_of("v2").find("no image named \"v2\" (it has: latest)"), std::string::npos) << error_of("v2");
  // A layer blob changed after the fact.
  for (const auto& e : fs::directory_iterator(layout / "blobs/sha256"))
    if (fs::file_size(e.path()) > 0 && read_file(e.path())[0] == '\x1f') {
      fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
      std::ofstream(e.path(), std::ios::app) << "tampered";
    }
  EXPECT_NE(error_of("latest").find("layer 1"), std::string::npos) << error_of("latest");
  fs::remove_all(layout);
  img.architecture = "arm64";
  img.write_layout(layout);
  EXPECT_NE(error_of("latest").find("linux/arm64"), std::string::npos) << error_of("latest");
}

TEST_F(OciLayers, DockerSaveArchiveIsReadAndVerified) {
  OciFixture img;
  img.layers = {{TarEntry::file("a", "one")}, {TarEntry::file(".wh.a", ""), TarEntry::file("b", "two")}};
  img.config = {{"WorkingDir", "/work"}};
  fs::path archive = base_ / "image.tar";
  write_file_atomic(archive, img.docker_save("app:1"));
  fs::create_directories(base_ / "staging");
  OciImage read = read_image_archive(archive, base_ / "staging", "app:1");
  ASSERT_EQ(read.layers.size(), 2u);
  EXPECT_EQ(read.workdir, "/work");
  fs::remove_all(base_ / "staging2");
  fs::create_directories(base_ / "staging2");
  try {
    read_image_archive(archive, base_ / "staging2", "other:2");
    FAIL() << "an unknown tag was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no image tagged \"other:2\""), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gondolin
