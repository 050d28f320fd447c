// vfs::host_dir on a real temporary directory: the operations tools need,
// and every way out of the root we could think of, asserted on the host.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "gondolin/error.h"
#include "gondolin/vfs.h"
#include "temp_dir.h"

using namespace gondolin;
using namespace gondolin::vfs;
using vfs::testing::TempDir;

namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const std::filesystem::path& p, const std::string& s) { std::ofstream(p) << s; }

struct HostDirTest : ::testing::Test {
  TempDir root;     // exported
  TempDir outside;  // must never be touched
  std::shared_ptr<Provider> p = host_dir(root.path());
  Caller me{0, 0, 1};

  void SetUp() override { spit(outside.path() / "secret", "top secret"); }
  // The outside directory still holds exactly its one untouched file.
  void expect_outside_untouched() {
    std::set<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(outside.path())) names.insert(e.path().filename());
    EXPECT_EQ(names, std::set<std::string>{"secret"});
    EXPECT_EQ(slurp(outside.path() / "secret"), "top secret");
  }
  std::string read_all(const std::string& path) {
    auto h = p->open(path, O_RDONLY);
    if (!h) return "<" + std::string(std::strerror(h.error())) + ">";
    std::string buf(4096, '\0');
    auto n = p->read(*h, 0, buf);
    p->release(*h);
    buf.resize(n ? *n : 0);
    return buf;
  }
};

TEST_F(HostDirTest, RefusesMissingRootsAndFiles) {
  EXPECT_THROW(host_dir(root.path() / "nope"), Error);
  spit(root.path() / "file", "x");
  EXPECT_THROW(host_dir(root.path() / "file"), Error);
}

TEST_F(HostDirTest, CreateWriteReadStat) {
  auto c = p->create("a.txt", O_WRONLY, 0644, me);
  ASSERT_TRUE(c);
  std::string data = "hello";
  ASSERT_EQ(*p->write(c->handle, 0, data), 5u);
  p->release(c->handle);
  EXPECT_EQ(slurp(root.path() / "a.txt"), "hello");
  struct stat st {};
  ASSERT_EQ(::stat((root.path() / "a.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid());  // the invoking user owns what the guest creates
  auto a = p->getattr("a.txt");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size, 5u);
  EXPECT_EQ(a->uid, 0u);  // shown to the guest as its own (root's) file
  EXPECT_EQ(read_all("a.txt"), "hello");
  EXPECT_EQ(p->create("a.txt", O_WRONLY, 0644, me).error(), EEXIST);
}

// virtio-fs hands over the guest's pages: reads and writes in pieces, in
// order, with a short count at end of file.
TEST_F(HostDirTest, VectoredReadsAndWritesGoInOrder) {
  auto c = p->create("v.bin", O_RDWR, 0644, me);
  ASSERT_TRUE(c);
  std::string a = "abc", b, d = "defgh";
  std::vector<std::span<const char>> out = {a, b, d};
  ASSERT_EQ(*p->write_vectored(c->handle, 2, out), 8u);
  EXPECT_EQ(slurp(root.path() / "v.bin"), std::string("\0\0abcdefgh", 10));
  std::string x(4, '.'), y(4, '.'), z(4, '.');
  std::vector<std::span<char>> in = {x, y, z};
  ASSERT_EQ(*p->read_vectored(c->handle, 3, in), 7u);  // 7 bytes left from offset 3
  EXPECT_EQ(x + y + z, "bcdefgh.....");
  EXPECT_EQ(p->read_vectored(Handle{12345}, 0, in).error(), EBADF);
  p->release(c->handle);
}

TEST_F(HostDirTest, SymlinksAreReturnedNeverFollowed) {
  ASSERT_TRUE(p->symlink(outside.path() / "secret", "abs", me));
  ASSERT_TRUE(p->symlink("../../../../../../etc/shadow", "rel", me));
  ::symlink(outside.path().c_str(), (root.path() / "dirlink").c_str());
  EXPECT_EQ(*p->readlink("abs"), (outside.path() / "secret").string());
  auto a = p->getattr("abs");
  ASSERT_TRUE(a);
  EXPECT_TRUE(S_ISLNK(a->mode));
  // Opening, truncating or writing through any of them fails; nothing outside changes.
  for (const char* link : {"abs", "rel", "dirlink/secret"}) {
    EXPECT_FALSE(p->open(link, O_RDWR | O_TRUNC)) << link;
    SetAttr truncate;
    truncate.size = 0;
    EXPECT_FALSE(p->setattr(link, truncate)) << link;
    SetAttr chmod;
    chmod.mode = 0777;
    EXPECT_FALSE(p->setattr(link, chmod)) << link;
    EXPECT_FALSE(p->getxattr(link, "user.x")) << link;
    EXPECT_FALSE(p->setxattr(link, "user.x", "v", 0)) << link;
  }
  EXPECT_FALSE(p->create("dirlink/new", O_WRONLY, 0644, me));
  EXPECT_FALSE(p->mkdir("dirlink/newdir", 0755, me));
  EXPECT_FALSE(p->symlink("x", "dirlink/l", me));
  EXPECT_FALSE(p->link("abs", "dirlink/hard"));
  EXPECT_FALSE(p->unlink("dirlink/secret"));
  EXPECT_FALSE(p->rename("dirlink/secret", "stolen", 0));
  EXPECT_FALSE(p->opendir("dirlink"));
  EXPECT_FALSE(p->getattr("dirlink/secret"));
  // A hard link of the symlink links the symlink itself.
  ASSERT_TRUE(p->link("abs", "abs2"));
  EXPECT_TRUE(S_ISLNK(p->getattr("abs2")->mode));
  expect_outside_untouched();
}

TEST_F(HostDirTest, DotDotAndAbsoluteComponentsCannotEscape) {
  // The server never passes these, but the provider must not rely on it.
  for (const char* bad : {"../secret", "a/../../secret", "..", "/etc/passwd"}) {
    EXPECT_FALSE(p->getattr(bad)) << bad;
    EXPECT_FALSE(p->open(bad, O_RDONLY)) << bad;
    EXPECT_FALSE(p->create(bad, O_WRONLY, 0644, me)) << bad;
  }
  expect_outside_untouched();
}

TEST_F(HostDirTest, SymlinkSwappedInDuringWritesNeverRedirects) {
  // A racer keeps replacing directory "d" with a symlink to the outside
  // directory while we create and write d/f through the provider.
  std::filesystem::create_directory(root.path() / "d");
  std::atomic<bool> stop{false};
  std::thread racer([&] {
    auto d = root.path() / "d", moved = root.path() / "d.real", link = root.path() / "d.link";
    ::symlink(outside.path().c_str(), link.c_str());
    while (!stop) {
      ::rename(d.c_str(), moved.c_str());
      ::rename(link.c_str(), d.c_str());  // d is now a symlink to outside
      ::rename(d.c_str(), link.c_str());
      ::rename(moved.c_str(), d.c_str());
    }
  });
  for (int i = 0; i < 3000; ++i) {
    std::string name = "d/f" + std::to_string(i % 7);
    if (auto c = p->create(name, O_WRONLY, 0644, me)) {
      (void)p->write(c->handle, 0, std::string("data"));
      p->release(c->handle);
    }
    if (auto h = p->open(name, O_WRONLY | O_TRUNC)) {
      (void)p->write(*h, 0, std::string("more"));
      p->release(*h);
    }
    SetAttr s;
    s.mode = 0600;
    s.size = 1;
    (void)p->setattr(name, s);
    (void)p->unlink(name);
    (void)p->mkdir("d/sub", 0755, me);
    (void)p->rmdir("d/sub");
  }
  stop = true;
  racer.join();
  expect_outside_untouched();
}

TEST_F(HostDirTest, SetIdBitsAndDeviceNodesAreRefused) {
  auto c = p->create("prog", O_WRONLY, 04755, me);
  ASSERT_TRUE(c);
  p->release(c->handle);
  SetAttr s;
  s.mode = 06755;
  auto a = p->setattr("prog", s);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->mode & 07777, 0755u);
  struct stat st {};
  ::stat((root.path() / "prog").c_str(), &st);
  EXPECT_EQ(st.st_mode & (S_ISUID | S_ISGID), 0u);
  EXPECT_EQ(p->mknod("dev", S_IFCHR | 0600, 0x103u, me).error(), EPERM);
  EXPECT_EQ(p->mknod("blk", S_IFBLK | 0600, 0x800u, me).error(), EPERM);
  // A FIFO would hang the next host program that opens it: refused. A socket
  // node is inert on the host, and nothing but a regular file is ever opened.
  EXPECT_EQ(p->mknod("fifo", S_IFIFO | 0600, 0, me).error(), EPERM);
  EXPECT_FALSE(std::filesystem::exists(root.path() / "fifo"));
  ASSERT_TRUE(p->mknod("sock", S_IFSOCK | 0600, 0, me));
  EXPECT_EQ(p->open("sock", O_RDONLY).error(), EACCES);

  // No setgid directories either, made or changed.
  auto d = p->mkdir("sgid", 02775, me);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->mode & S_ISGID, 0u);
  ::stat((root.path() / "sgid").c_str(), &st);
  EXPECT_EQ(st.st_mode & S_ISGID, 0u);
  SetAttr g;
  g.mode = 02755;
  ASSERT_TRUE(p->setattr("sgid", g));
  ::stat((root.path() / "sgid").c_str(), &st);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST_F(HostDirTest, OwnershipStaysWithinTheMapping) {
  spit(root.path() / "f", "x");
  SetAttr to_root;
  to_root.uid = 0;
  to_root.gid = 0;
  EXPECT_TRUE(p->setattr("f", to_root));
  SetAttr to_other;
  to_other.uid = 4242;
  EXPECT_EQ(p->setattr("f", to_other).error(), EPERM);
  struct stat st {};
  ::stat((root.path() / "f").c_str(), &st);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST_F(HostDirTest, RenameLinkUnlinkRmdir) {
  spit(root.path() / "a", "A");
  spit(root.path() / "b", "B");
  std::filesystem::create_directories(root.path() / "x/y");
  ASSERT_TRUE(p->rename("a", "b", 0));  // over an existing file
  EXPECT_EQ(slurp(root.path() / "b"), "A");
  ASSERT_TRUE(p->rename("b", "x/y/c", 0));  // across directories
  EXPECT_EQ(p->rename("x/y/c", "x", RENAME_NOREPLACE).error(), EEXIST);
  auto l = p->link("x/y/c", "hard");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->nlink, 2u);
  EXPECT_EQ(p->getattr("hard")->ino, p->getattr("x/y/c")->ino);
  EXPECT_EQ(p->rmdir("x").error(), ENOTEMPTY);
  EXPECT_TRUE(p->unlink("x/y/c"));
  EXPECT_TRUE(p->rmdir("x/y"));
  EXPECT_EQ(p->unlink("x").error(), EISDIR);
  EXPECT_TRUE(p->rmdir("x"));
  EXPECT_EQ(p->rmdir("").error(), EBUSY);
}

TEST_F(HostDirTest, LargeDirectoryListsEveryEntryOnceAcrossResumes) {
  for (int i = 0; i < 3000; ++i) spit(root.path() / ("file-" + std::to_string(i)), "");
  auto h = p->opendir("");
  ASSERT_TRUE(h);
  std::set<std::string> seen;
  std::uint64_t offset = 0;
  for (int call = 0; call < 10000; ++call) {
    int taken = 0;
    std::uint64_t next = offset;
    ASSERT_TRUE(p->readdir(*h, offset, [&](const DirEntry& e) {
      if (taken == 37) return false;  // like a full reply buffer
      EXPECT_TRUE(seen.insert(e.name).second) << e.name;
      ++taken;
      next = e.next_offset;
      return true;
    }));
    if (taken == 0) break;
    offset = next;
  }
  p->releasedir(*h);
  EXPECT_EQ(seen.size(), 3002u);  // with . and ..
}

TEST_F(HostDirTest, SparseFilesAndSeekHoles) {
  auto c = p->create("sparse", O_RDWR, 0644, me);
  ASSERT_TRUE(c);
  const std::uint64_t gb = 1ull << 30;
  ASSERT_TRUE(p->write(c->handle, gb - 5, std::string("tail!")));
  auto a = p->fgetattr(c->handle);
  EXPECT_EQ(a->size, gb);
  EXPECT_LT(a->blocks * 512, 1u << 20);
  auto data = p->lseek(c->handle, 0, SEEK_DATA);
  ASSERT_TRUE(data);
  EXPECT_GT(*data, gb / 2);
  EXPECT_EQ(*p->lseek(c->handle, 0, SEEK_HOLE), 0u);
  p->release(c->handle);
}

TEST_F(HostDirTest, AppendFromTwoHandles) {
  spit(root.path() / "log", "");
  auto h1 = p->open("log", O_WRONLY | O_APPEND);
  auto h2 = p->open("log", O_WRONLY | O_APPEND);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(p->write(*h1, 0, std::string("a\n")));  // the offset is ignored for O_APPEND
    ASSERT_TRUE(p->write(*h2, 0, std::string("b\n")));
  }
  p->release(*h1);
  p->release(*h2);
  EXPECT_EQ(slurp(root.path() / "log").size(), 400u);
}

TEST_F(HostDirTest, UserXattrsOnly) {
  spit(root.path() / "f", "x");
  Status s = p->setxattr("f", "user.note", "hi", 0);
  if (!s && s.error() == ENOTSUP) GTEST_SKIP() << "the temp file system has no user xattrs";
  ASSERT_TRUE(s);
  EXPECT_EQ(*p->getxattr("f", "user.note"), "hi");
  EXPECT_EQ(*p->listxattr("f"), std::vector<std::string>{"user.note"});
  EXPECT_EQ(p->setxattr("f", "security.capability", "x", 0).error(), EPERM);
  EXPECT_EQ(p->setxattr("f", "trusted.x", "x", 0).error(), EPERM);
  EXPECT_EQ(p->getxattr("f", "security.capability").error(), ENODATA);
  EXPECT_TRUE(p->removexattr("f", "user.note"));
}

TEST_F(HostDirTest, TruncateAndTimesThroughPathAndHandle) {
  spit(root.path() / "f", "0123456789");
  SetAttr s;
  s.size = 4;
  s.mtime = TimeChange{false, Timespec{1000000000, 5}};
  auto a = p->setattr("f", s);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size, 4u);
  EXPECT_EQ(a->mtime.sec, 1000000000);
  auto h = p->open("f", O_RDWR);
  SetAttr grow;
  grow.size = 8;
  EXPECT_EQ(p->fsetattr(*h, grow)->size, 8u);
  p->release(*h);
  EXPECT_EQ(std::filesystem::file_size(root.path() / "f"), 8u);
}

}  // namespace
