// The memory provider, the read-only and hiding wrappers, globs and the node table.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/stat.h>

#include <fstream>
#include <set>

#include "config/mount_rules.h"
#include "gondolin/error.h"
#include "gondolin/vfs.h"
#include "proto/wire.h"
#include "temp_dir.h"
#include "vfs/mount_description.h"
#include "vfs/node_table.h"
#include "vfs/path_glob.h"

using namespace gondolin;
using namespace gondolin::vfs;
using vfs::testing::TempDir;

namespace {

Caller me{0, 0, 1};

std::set<std::string> list(Provider& p, const std::string& dir) {
  std::set<std::string> out;
  auto h = p.opendir(dir);
  if (!h) return out;
  (void)p.readdir(*h, 0, [&](const DirEntry& e) {
    out.insert(e.name);
    return true;
  });
  p.releasedir(*h);
  return out;
}

std::string read_all(Provider& p, const std::string& path) {
  auto h = p.open(path, O_RDONLY);
  if (!h) return "<error>";
  std::string buf(1 << 16, '\0');
  auto n = p.read(*h, 0, buf);
  p.release(*h);
  buf.resize(n ? *n : 0);
  return buf;
}

TEST(MemoryProvider, BasicTree) {
  auto m = memory();
  ASSERT_TRUE(m->mkdir("d", 0755, me));
  auto c = m->create("d/f", O_RDWR, 0600, Caller{1000, 1000, 1});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->attr.uid, 1000u);
  ASSERT_EQ(*m->write(c->handle, 0, std::string("abc")), 3u);
  m->release(c->handle);
  EXPECT_EQ(read_all(*m, "d/f"), "abc");
  EXPECT_EQ(list(*m, "d"), (std::set<std::string>{".", "..", "f"}));
  ASSERT_TRUE(m->symlink("/x/y", "d/l", me));
  EXPECT_EQ(*m->readlink("d/l"), "/x/y");
  ASSERT_TRUE(m->link("d/f", "g"));
  EXPECT_EQ(m->getattr("g")->nlink, 2u);
  EXPECT_EQ(m->rmdir("d").error(), ENOTEMPTY);
  EXPECT_EQ(m->getattr("nope").error(), ENOENT);
  EXPECT_EQ(m->getattr("g/x").error(), ENOTDIR);
}

TEST(MemoryProvider, RenameOverUnlinkWhileOpenAndAppend) {
  auto m = memory();
  auto a = m->create("a", O_RDWR, 0644, me);
  (void)m->write(a->handle, 0, std::string("new"));
  auto b = m->create("b", O_RDWR, 0644, me);
  (void)m->write(b->handle, 0, std::string("old"));
  ASSERT_TRUE(m->rename("a", "b", 0));
  EXPECT_EQ(read_all(*m, "b"), "new");
  std::string buf(10, '\0');
  EXPECT_EQ(*m->read(b->handle, 0, buf), 3u);  // the replaced file is still readable through its handle
  EXPECT_EQ(buf.substr(0, 3), "old");
  m->release(b->handle);
  ASSERT_TRUE(m->unlink("b"));
  EXPECT_EQ(*m->read(a->handle, 0, buf), 3u);
  EXPECT_EQ(m->fgetattr(a->handle)->nlink, 0u);
  m->release(a->handle);

  auto log = m->create("log", O_WRONLY | O_APPEND, 0644, me);
  auto log2 = m->open("log", O_WRONLY | O_APPEND);
  (void)m->write(log->handle, 0, std::string("1"));
  (void)m->write(*log2, 0, std::string("2"));
  EXPECT_EQ(read_all(*m, "log"), "12");
}

// The default vectored calls go piece by piece through read/write.
TEST(MemoryProvider, VectoredCallsGoPieceByPiece) {
  auto p = memory();
  auto c = p->create("f", O_RDWR, 0644, me);
  ASSERT_TRUE(c);
  std::string a = "hello ", b = "world";
  std::vector<std::span<const char>> out = {a, b};
  ASSERT_EQ(*p->write_vectored(c->handle, 0, out), 11u);
  std::string x(3, '.'), y(10, '.');
  std::vector<std::span<char>> in = {x, y};
  ASSERT_EQ(*p->read_vectored(c->handle, 1, in), 10u);
  EXPECT_EQ(x + y, "ello world...");
  p->release(c->handle);
}

TEST(MemoryProvider, SparseAndLimits) {
  MemoryOptions o;
  o.max_bytes = 1 << 20;
  auto m = memory(o);
  auto c = m->create("s", O_RDWR, 0644, me);
  ASSERT_TRUE(m->write(c->handle, 1ull << 30, std::string("x")));  // 1 GiB hole: costs one chunk
  EXPECT_EQ(m->fgetattr(c->handle)->size, (1ull << 30) + 1);
  EXPECT_EQ(*m->lseek(c->handle, 0, SEEK_HOLE), 0u);
  EXPECT_EQ(*m->lseek(c->handle, 0, SEEK_DATA), 1ull << 30);
  std::string big(2 << 20, 'y');
  auto w = m->write(c->handle, 0, big);
  EXPECT_TRUE(!w || *w < big.size());  // stops at the budget
  EXPECT_EQ(m->write(c->handle, 1ull << 40, std::string("z")).error(), EFBIG);
}

TEST(MemoryProvider, ListingSurvivesRemovalDuringIt) {
  auto m = memory();
  for (int i = 0; i < 100; ++i) (void)m->create("f" + std::to_string(i), O_WRONLY, 0644, me);
  auto h = m->opendir("");
  std::set<std::string> seen;
  std::uint64_t offset = 0;
  for (;;) {
    std::vector<std::string> batch;
    (void)m->readdir(*h, offset, [&](const DirEntry& e) {
      if (batch.size() == 10) return false;
      seen.insert(e.name);
      offset = e.next_offset;
      batch.push_back(e.name);
      return true;
    });
    if (batch.empty()) break;
    for (const auto& name : batch)
      if (name[0] == 'f') (void)m->unlink(name);  // rm -rf: remove what was listed, then list on
  }
  EXPECT_EQ(seen.size(), 102u);
}

TEST(ReadOnly, RefusesEveryChange) {
  TempDir tmp;
  std::filesystem::create_directory(tmp.path() / "d");
  { std::ofstream(tmp.path() / "f") << "data"; }
  auto p = read_only(host_dir(tmp.path()));
  EXPECT_TRUE(p->read_only());
  EXPECT_EQ(read_all(*p, "f"), "data");
  SetAttr s;
  s.mode = 0777;
  EXPECT_EQ(p->setattr("f", s).error(), EROFS);
  EXPECT_EQ(p->create("g", O_WRONLY, 0644, me).error(), EROFS);
  EXPECT_EQ(p->open("f", O_WRONLY).error(), EROFS);
  EXPECT_EQ(p->open("f", O_RDONLY | O_TRUNC).error(), EROFS);
  EXPECT_EQ(p->mkdir("e", 0755, me).error(), EROFS);
  EXPECT_EQ(p->unlink("f").error(), EROFS);
  EXPECT_EQ(p->rmdir("d").error(), EROFS);
  EXPECT_EQ(p->rename("f", "g", 0).error(), EROFS);
  EXPECT_EQ(p->symlink("x", "l", me).error(), EROFS);
  EXPECT_EQ(p->link("f", "h").error(), EROFS);
  EXPECT_EQ(p->mknod("n", S_IFIFO | 0644, 0, me).error(), EROFS);
  EXPECT_EQ(p->setxattr("f", "user.a", "b", 0).error(), EROFS);
  EXPECT_EQ(p->removexattr("f", "user.a").error(), EROFS);
  auto h = p->open("f", O_RDONLY);
  EXPECT_EQ(p->write(*h, 0, std::string("x")).error(), EROFS);
  std::string x = "x";
  std::vector<std::span<const char>> pieces = {x};
  EXPECT_EQ(p->write_vectored(*h, 0, pieces).error(), EROFS);
  EXPECT_EQ(p->fsetattr(*h, s).error(), EROFS);
  EXPECT_EQ(p->fallocate(*h, 0, 0, 10).error(), EROFS);
  p->release(*h);
  EXPECT_EQ(read_all(*p, "f"), "data");
}

TEST(PathGlob, Matching) {
  PathGlob env("**/.env");
  EXPECT_TRUE(env.matches(".env"));
  EXPECT_TRUE(env.matches("a/b/.env"));
  EXPECT_FALSE(env.matches("a/.env.example"));
  PathGlob cfg(".git/config");
  EXPECT_TRUE(cfg.matches(".git/config"));
  EXPECT_FALSE(cfg.matches("x/.git/config"));
  EXPECT_TRUE(cfg.hides(".git/config/deeper"));
  PathGlob pem("secrets/*.pem");
  EXPECT_TRUE(pem.matches("secrets/.k.pem"));  // '*' matches a leading dot too
  EXPECT_FALSE(pem.matches("secrets/sub/k.pem"));
  PathGlob mid("a/**/z");
  EXPECT_TRUE(mid.matches("a/z"));
  EXPECT_TRUE(mid.matches("a/b/c/z"));
  EXPECT_FALSE(PathGlob("**").matches(""));  // never the mount root
  for (const char* bad : {"", "/abs", "a/../b", "a**b", "./x"}) EXPECT_THROW(PathGlob{bad}, Error) << bad;
}

struct HideTest : ::testing::Test {
  TempDir tmp;
  std::shared_ptr<Provider> p;
  void SetUp() override {
    std::filesystem::create_directories(tmp.path() / "proj/.git");
    std::filesystem::create_directories(tmp.path() / "proj/sub");
    std::ofstream(tmp.path() / "proj/.env") << "TOKEN=1";
    std::ofstream(tmp.path() / "proj/sub/.env") << "TOKEN=2";
    std::ofstream(tmp.path() / "proj/.git/config") << "[credential]";
    std::ofstream(tmp.path() / "proj/main.c") << "int main;";
    p = hide(host_dir(tmp.path()), {"**/.env", "proj/.git/config", "private"});
  }
};

TEST_F(HideTest, HiddenPathsDoNotExist) {
  EXPECT_EQ(p->getattr("proj/.env").error(), ENOENT);
  EXPECT_EQ(p->getattr("proj/sub/.env").error(), ENOENT);
  EXPECT_EQ(p->getattr("proj/.git/config").error(), ENOENT);
  EXPECT_EQ(p->open("proj/.env", O_RDONLY).error(), ENOENT);
  EXPECT_EQ(p->unlink("proj/.env").error(), ENOENT);
  EXPECT_EQ(p->readlink("proj/.env").error(), ENOENT);
  EXPECT_EQ(p->getxattr("proj/.env", "user.x").error(), ENOENT);
  EXPECT_EQ(list(*p, "proj"), (std::set<std::string>{".", "..", ".git", "sub", "main.c"}));
  EXPECT_EQ(list(*p, "proj/.git"), (std::set<std::string>{".", ".."}));
  EXPECT_TRUE(p->getattr("proj/main.c"));
}

TEST_F(HideTest, HiddenPathsCannotBeCreatedOrReached) {
  EXPECT_EQ(p->create("proj/new/.env", O_WRONLY, 0644, me).error(), EACCES);
  EXPECT_EQ(p->create("x.env", O_WRONLY, 0644, me).error() == 0, true);  // only exact names
  EXPECT_EQ(p->create(".env", O_WRONLY, 0644, me).error(), EACCES);
  EXPECT_EQ(p->mkdir("private", 0755, me).error(), EACCES);
  EXPECT_EQ(p->symlink("x", "proj/.env2", me).error() == 0, true);
  EXPECT_EQ(p->rename("proj/main.c", "proj/.env", 0).error(), EACCES);
  EXPECT_EQ(p->link("proj/main.c", "proj/sub/.env").error(), EACCES);
  EXPECT_EQ(p->link("proj/.env", "proj/leak").error(), ENOENT);
  EXPECT_EQ(p->rename("proj/.env", "proj/leak", 0).error(), ENOENT);
  // Renaming the directory that holds .git/config would expose it.
  EXPECT_EQ(p->rename("proj", "renamed", 0).error(), EACCES);
  EXPECT_EQ(p->rename("proj/.git", "proj/git2", 0).error(), EACCES);
  // **/.env stays hidden wherever its directory goes, so that rename is fine.
  EXPECT_TRUE(p->rename("proj/sub", "proj/sub2", 0));
  EXPECT_EQ(p->getattr("proj/sub2/.env").error(), ENOENT);
  EXPECT_TRUE(std::filesystem::exists(tmp.path() / "proj/sub2/.env"));
  EXPECT_EQ(std::filesystem::file_size(tmp.path() / "proj/.env"), 7u);
}

TEST(NodeTable, PathsMovesAndDetach) {
  NodeTable t;
  auto a = *t.remember(NodeTable::kRootId, "a", S_IFDIR);
  auto b = *t.remember(a, "b", S_IFREG);
  EXPECT_EQ(t.path(b), "a/b");
  auto c = *t.remember(NodeTable::kRootId, "c", S_IFDIR);
  t.move(a, "b", c, "d");
  EXPECT_EQ(t.path(b), "c/d");
  auto e = *t.remember(NodeTable::kRootId, "e", S_IFREG);
  t.move(NodeTable::kRootId, "e", c, "d");  // over b: b loses its path
  EXPECT_EQ(t.path(e), "c/d");
  EXPECT_EQ(t.path(b), std::nullopt);
  EXPECT_TRUE(t.contains(b));
  t.forget(b, 1);
  EXPECT_FALSE(t.contains(b));
  // The same name with a different file type is a different node.
  auto e2 = *t.remember(c, "d", S_IFDIR);
  EXPECT_NE(e2, e);
  t.exchange(NodeTable::kRootId, "a", NodeTable::kRootId, "c");
  EXPECT_EQ(t.path(a), "c");
  EXPECT_EQ(t.path(e2), "a/d");
}

TEST(NodeTable, SerializeRoundTripAndBounds) {
  NodeTable t(5);
  auto a = *t.remember(NodeTable::kRootId, "a", S_IFDIR);
  auto b = *t.remember(a, "b", S_IFREG);
  *t.remember(a, "c", S_IFREG);
  t.remember(a, "d", S_IFREG);
  EXPECT_EQ(t.remember(a, "e", S_IFREG), std::nullopt);  // full
  NodeTable u(5);
  ASSERT_TRUE(u.load(t.serialize()));
  EXPECT_EQ(u.path(b), "a/b");
  EXPECT_EQ(u.size(), t.size());
  EXPECT_FALSE(u.load("garbage"));
  EXPECT_EQ(u.size(), 1u);
}

// A saved table comes from a snapshot: a directory that names itself as its
// parent would make path() walk forever (found by fuzz_fuse_state).
TEST(NodeTable, ADirectoryThatIsItsOwnParentIsRefused) {
  proto::PayloadWriter w;
  w.u32(2);  // the table's format
  w.u64(3);  // next id
  w.u32(1);  // one node:
  w.u64(2);  // id 2
  w.u64(1);  // one lookup
  w.u32(S_IFDIR);
  w.u32(1);  // one name: "a" inside node 2
  w.u64(2);
  w.bytes("a");
  NodeTable t;
  EXPECT_FALSE(t.load(std::string(w.data().begin(), w.data().end())));
  EXPECT_EQ(t.size(), 1u);
}

TEST(MountFlags, ParsesHostfsSpecs) {
  TempDir tmp;
  auto spec = config::parse_hostfs_spec(tmp.path().string() + ":/work:ro");
  EXPECT_EQ(spec.guest_path, "/work");
  EXPECT_TRUE(spec.suffix.read_only);
  EXPECT_FALSE(config::parse_hostfs_spec(tmp.path().string() + ":/a//b/").suffix.read_only);
  EXPECT_EQ(config::parse_hostfs_spec(tmp.path().string() + ":/a//b/").guest_path, "/a/b");
  std::ofstream(tmp.path() / "file") << "x";
  for (std::string bad : {tmp.path().string() + "/missing:/w", (tmp.path() / "file").string() + ":/w",
                          tmp.path().string(), tmp.path().string() + ":relative", tmp.path().string() + ":/",
                          tmp.path().string() + ":/proc/x", tmp.path().string() + ":/a/../b"})
    EXPECT_THROW(config::parse_hostfs_spec(bad), Error) << bad;
}

// Options after the paths override --mount-transport / --mount-cache for that mount.
TEST(MountFlags, PerMountOptionsOverrideTheDefaults) {
  TempDir tmp;
  const std::string dir = tmp.path().string();
  auto spec = config::parse_hostfs_spec(dir + ":/data:ro,transport=virtiofs,cache=direct");
  EXPECT_EQ(spec.guest_path, "/data");
  EXPECT_TRUE(spec.suffix.read_only);
  EXPECT_EQ(spec.suffix.transport, vfs::FsTransport::Virtiofs);
  EXPECT_EQ(spec.suffix.direct_io, true);
  spec = config::parse_hostfs_spec(dir + ":/work:rw");
  EXPECT_FALSE(spec.suffix.read_only);
  EXPECT_FALSE(spec.suffix.transport);

  vfs::MountOptions defaults;
  defaults.transport = vfs::FsTransport::Virtiofs;
  defaults.direct_io = true;
  auto mounts = config::build_mounts({dir + ":/work:transport=serial", dir + ":/data"},
                                     {"/scratch:cache=auto", "/tmp2"}, {}, defaults);
  ASSERT_EQ(mounts.size(), 4u);
  EXPECT_EQ(mounts[0].options.transport, vfs::FsTransport::Serial);
  EXPECT_TRUE(mounts[0].options.direct_io);
  EXPECT_EQ(mounts[1].options.transport, vfs::FsTransport::Virtiofs);
  EXPECT_EQ(mounts[2].guest_path, "/scratch");
  EXPECT_FALSE(mounts[2].options.direct_io);
  EXPECT_EQ(mounts[3].options.transport, vfs::FsTransport::Virtiofs);

  for (std::string bad : {dir + ":/w:fast", dir + ":/w:ro,", dir + ":/w:transport=9p", dir + ":/w:cache="}) {
    try {
      config::parse_hostfs_spec(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("unknown option"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(config::parse_memfs_spec("/scratch:ro"), Error);
  EXPECT_THROW(config::parse_memfs_spec("/scratch:bogus"), Error);
  EXPECT_EQ(config::parse_memfs_spec("/scratch").guest_path, "/scratch");
}

TEST(MountFlags, HideGlobsGoToTheirMount) {
  TempDir tmp;
  std::ofstream(tmp.path() / ".env") << "x";
  auto mounts = config::build_mounts({tmp.path().string() + ":/work"}, {"/scratch"}, {"/work/.env", "/**/*.key"});
  ASSERT_EQ(mounts.size(), 2u);
  EXPECT_EQ(mounts[0].provider->getattr(".env").error(), ENOENT);
  EXPECT_THROW(config::build_mounts({}, {"/scratch"}, {"/elsewhere/x"}), Error);
  EXPECT_THROW(config::build_mounts({}, {"/scratch"}, {"relative"}), Error);
  EXPECT_THROW(config::build_mounts({}, {"/scratch"}, {"/scratch"}), Error);
}

// ---- Snapshot descriptions ----------------------------------------------------------

TEST(MountDescription, RoundTripRebuildsEquivalentProviders) {
  TempDir a, b;
  std::ofstream(a.path() / "visible") << "v";
  std::ofstream(a.path() / ".env") << "secret";
  std::vector<Mount> mounts;
  mounts.push_back({"/a", hide(host_dir(a.path()), {"**/.env"})});
  mounts.push_back({"/b", read_only(host_dir(b.path(), {1000, 1000}))});
  mounts.back().options.attr_timeout = std::chrono::milliseconds(250);
  auto back = mounts_from_description(describe_mounts(mounts), "snapshot test");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].guest_path, "/a");
  EXPECT_EQ(list(*back[0].provider, ""), (std::set<std::string>{".", "..", "visible"}));
  EXPECT_FALSE(back[0].provider->read_only());
  EXPECT_EQ(back[1].guest_path, "/b");
  EXPECT_TRUE(back[1].provider->read_only());
  EXPECT_EQ(back[1].options.attr_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(back[1].provider->getattr("")->uid, 1000u);
  EXPECT_EQ(back[1].provider->describe(), mounts[1].provider->describe());
}

// A plain memory mount is rebuilt (empty; its files travel separately,
// SavableContents); one inside a wrapper would lose its files, so it is refused.
TEST(MountDescription, MemoryMountsAreDescribedWrappedOnesRefused) {
  MemoryOptions small;
  small.max_bytes = 4096;
  small.max_files = 7;
  auto back = mounts_from_description(describe_mounts({{"/m", memory(small)}}), "snapshot test");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].provider->describe(), memory(small)->describe());
  for (auto wrapped : {read_only(memory()), hide(memory(), {"*.pem"})}) {
    std::vector<Mount> mounts{{"/m", wrapped}};
    try {
      (void)describe_mounts(mounts);
      ADD_FAILURE() << "described a wrapped memory mount";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("/m cannot be part of a snapshot"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(
      (void)mounts_from_description(R"([{"guest_path":"/m","provider":{"kind":"memory","max_bytes":-1}}])", "snapshot"),
      Error);
}

TEST(MountDescription, MissingHostDirAndBadInputAreClearErrors) {
  std::string gone = R"([{"guest_path":"/w","provider":{"kind":"host_dir","root":"/nonexistent/gondolin-moved"}}])";
  try {
    (void)mounts_from_description(gone, "snapshot 0123");
    ADD_FAILURE() << "opened a missing host directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("snapshot 0123 mounts host directory /nonexistent/gondolin-moved at /w"),
              std::string::npos)
        << e.what();
  }
  for (const char* bad : {"{}", "[1]", R"([{"guest_path":"/w"}])",
                          R"([{"guest_path":"/w","provider":{"kind":"host_dir","root":"relative"}}])",
                          R"([{"guest_path":"/w","provider":{"kind":"magic"}}])",
                          R"([{"guest_path":"/w","provider":{"kind":"hide","globs":[1],"inner":{}}}])",
                          R"([{"guest_path":"/w","attr_timeout_ms":-5,"provider":{"kind":"host_dir","root":"/"}}])",
                          R"([{"guest_path":"/w","provider":{"kind":"host_dir","root":"/","guest_uid":"x"}}])"})
    EXPECT_THROW((void)mounts_from_description(bad, "snapshot"), Error) << bad;
}

}  // namespace
