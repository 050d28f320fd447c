// A memory mount's files saved for a snapshot and loaded on resume
// (SavableContents over memory_tree): everything a tree holds comes back, and
// saved bytes that break a tree's invariants or the mount's limits are refused
// without touching the mount.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>

#include "gondolin/vfs.h"
#include "proto/wire.h"
#include "vfs/memory_tree.h"
#include "vfs/savable_contents.h"

using namespace gondolin;
using namespace gondolin::vfs;

namespace {

Caller me{1000, 1000, 1};

SavableContents& savable(const std::shared_ptr<Provider>& p) { return dynamic_cast<SavableContents&>(*p); }

std::string read_all(Provider& p, const std::string& path, std::uint64_t offset = 0, std::size_t size = 1 << 16) {
  auto h = p.open(path, O_RDONLY);
  if (!h) return "<error>";
  std::string buf(size, '\0');
  auto n = p.read(*h, offset, buf);
  p.release(*h);
  buf.resize(n ? *n : 0);
  return buf;
}

std::vector<std::string> listing(Provider& p, const std::string& dir) {
  std::vector<std::string> out;
  auto h = p.opendir(dir);
  if (!h) return out;
  (void)p.readdir(*h, 0, [&](const DirEntry& e) {
    out.push_back(e.name);
    return true;
  });
  p.releasedir(*h);
  return out;
}

void write(Provider& p, const std::string& path, std::uint64_t offset, const std::string& data) {
  auto c = p.create(path, O_WRONLY, 0640, me);
  auto h = c ? c->handle : *p.open(path, O_WRONLY);
  ASSERT_EQ(*p.write(h, offset, data), data.size());
  p.release(h);
}

std::shared_ptr<Provider> sample() {
  auto m = memory();
  EXPECT_TRUE(m->mkdir("src", 0750, me));
  EXPECT_TRUE(m->mkdir("src/deep", 0755, me));
  write(*m, "src/z.txt", 0, "zzz");
  write(*m, "src/a.txt", 0, "aaa");
  write(*m, "sparse", 5u << 20, "tail");  // a hole of 5 MiB, one chunk stored
  EXPECT_TRUE(m->link("src/a.txt", "hard"));
  EXPECT_TRUE(m->symlink("../src/a.txt", "src/deep/link", me));
  EXPECT_TRUE(m->mknod("fifo", S_IFIFO | 0600, 0, me));
  EXPECT_TRUE(m->setxattr("src/a.txt", "user.tag", "v1", 0));
  return m;
}

TEST(MemoryContents, EverythingComesBack) {
  auto source = sample();
  std::string saved = savable(source).save_contents();
  auto target = memory();
  ASSERT_EQ(savable(target).load_contents(saved), "");
  EXPECT_EQ(listing(*target, "src"), listing(*source, "src"));  // listing order too
  EXPECT_EQ(read_all(*target, "src/a.txt"), "aaa");
  EXPECT_EQ(read_all(*target, "sparse", 5u << 20), "tail");
  EXPECT_EQ(read_all(*target, "sparse", 0, 4), std::string(4, '\0'));
  EXPECT_EQ(target->getattr("sparse")->size, (5u << 20) + 4);
  EXPECT_EQ(target->getattr("sparse")->blocks, source->getattr("sparse")->blocks);
  EXPECT_EQ(*target->readlink("src/deep/link"), "../src/a.txt");
  EXPECT_TRUE(S_ISFIFO(target->getattr("fifo")->mode));
  EXPECT_EQ(*target->getxattr("hard", "user.tag"), "v1");
  for (const char* path : {"", "src", "src/a.txt", "hard", "src/deep", "sparse"}) {
    auto a = *source->getattr(path), b = *target->getattr(path);
    EXPECT_EQ(a.ino, b.ino) << path;
    EXPECT_EQ(a.mode, b.mode) << path;
    EXPECT_EQ(a.nlink, b.nlink) << path;
    EXPECT_EQ(a.uid, b.uid) << path;
    EXPECT_EQ(a.mtime.sec, b.mtime.sec) << path;
    EXPECT_EQ(a.mtime.nsec, b.mtime.nsec) << path;
  }
  // Hard links stay one file; new files get fresh inode numbers.
  write(*target, "hard", 0, "b");
  EXPECT_EQ(read_all(*target, "src/a.txt"), "baa");
  auto fresh = target->create("new", O_WRONLY, 0600, me);
  ASSERT_TRUE(fresh);
  EXPECT_GT(fresh->attr.ino, source->getattr("sparse")->ino);
  target->release(fresh->handle);
  EXPECT_EQ(savable(target).load_contents(saved), "");  // and loads again over it
  EXPECT_EQ(target->getattr("new").error(), ENOENT);
}

TEST(MemoryContents, LimitsOfTheMountApply) {
  std::string saved = savable(sample()).save_contents();
  MemoryOptions few_files;
  few_files.max_files = 3;
  auto a = memory(few_files);
  EXPECT_NE(savable(a).load_contents(saved).find("more files"), std::string::npos);
  MemoryOptions little;
  little.max_bytes = 1000;
  auto b = memory(little);
  EXPECT_NE(savable(b).load_contents(saved).find("more data"), std::string::npos);
  EXPECT_EQ(listing(*b, ""), (std::vector<std::string>{".", ".."}));  // untouched
}

// Hand-made trees: the root, then whatever nodes and entries the test wants.
struct TreeBytes {
  proto::PayloadWriter w;
  explicit TreeBytes(std::uint32_t nodes, std::uint64_t next_ino = 100) {
    w.u32(1);
    w.u64(next_ino);
    w.u32(nodes);
  }
  TreeBytes& node(std::uint32_t mode, std::uint64_t ino = 1) {
    for (std::uint32_t v : {mode, 0u, 0u, 0u}) w.u32(v);
    w.u64(ino);
    w.u64(0);
    for (int t = 0; t < 3; ++t) {
      w.u64(0);
      w.u32(0);
    }
    w.bytes("");
    w.u32(0);  // xattrs
    w.u32(0);  // chunks
    return *this;
  }
  TreeBytes& entries(std::vector<std::tuple<std::uint32_t, std::string, std::uint32_t>> list) {
    w.u32(static_cast<std::uint32_t>(list.size()));
    for (const auto& [dir, name, child] : list) {
      w.u32(dir);
      w.bytes(name);
      w.u32(child);
    }
    return *this;
  }
  std::string bytes() { return std::string(w.data().begin(), w.data().end()); }
};

TEST(MemoryContents, BrokenTreesAreRefused) {
  const std::uint32_t dir = S_IFDIR | 0755, file = S_IFREG | 0644;
  struct Case {
    std::string bytes;
    std::string why;
  };
  std::vector<Case> cases = {
      {TreeBytes(1).node(file).entries({}).bytes(), "root is not a directory"},
      {TreeBytes(2).node(dir).node(dir).entries({{0, "a", 1}, {0, "b", 1}}).bytes(), "two names"},
      {TreeBytes(3).node(dir).node(dir).node(dir).entries({{1, "x", 2}, {2, "y", 1}}).bytes(), "not reachable"},
      {TreeBytes(2).node(dir).node(file).entries({{0, "a", 1}, {0, "a", 1}}).bytes(), "name twice"},
      {TreeBytes(2).node(dir).node(file).entries({{1, "a", 0}}).bytes(), "names no directory"},
      {TreeBytes(2).node(dir).node(file).entries({{0, "a/b", 1}}).bytes(), "invalid name"},
      {TreeBytes(2).node(dir).node(file).entries({{0, "..", 1}}).bytes(), "invalid name"},
      {TreeBytes(2).node(dir).node(0170000).entries({}).bytes(), "unknown file type"},
      {TreeBytes(2, 5).node(dir).node(file, 9).entries({}).bytes(), "inode number"},
      {TreeBytes(2).node(dir).node(file).entries({{0, "a", 1}}).bytes() + "x", "trailing"},
      {TreeBytes(2).node(dir).bytes(), "truncated"},
      {"", "not a memory file system"},
  };
  for (const auto& c : cases) {
    auto m = memory();
    ASSERT_TRUE(m->mkdir("kept", 0755, me));
    std::string why = savable(m).load_contents(c.bytes);
    EXPECT_NE(why.find(c.why), std::string::npos) << "want '" << c.why << "', got '" << why << "'";
    EXPECT_TRUE(m->getattr("kept")) << c.why;
  }
  // The same shapes made valid load.
  auto m = memory();
  EXPECT_EQ(savable(m).load_contents(TreeBytes(2).node(dir).node(file).entries({{0, "a", 1}}).bytes()), "");
  EXPECT_TRUE(S_ISREG(m->getattr("a")->mode));
}

}  // namespace
