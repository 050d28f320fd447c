// The FUSE server driven with the messages a guest kernel (or a hostile
// guest) could send: negotiation, the normal flow, and every way a request
// can be malformed. Nothing here may crash; everything gets an errno.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>

#include "fuse_messages.h"
#include "proto/wire.h"
#include "temp_dir.h"

using namespace gondolin;
using namespace gondolin::vfs;
using namespace gondolin::vfs::testing;

namespace {

TEST(FuseServer, InitNegotiatesBigRequestsAndReaddirplus) {
  ServerDriver d(memory());
  auto r = d.init(37);
  ASSERT_EQ(r.error(), 0);
  auto out = r.as<fuse_init_out>();
  EXPECT_EQ(out.major, 7u);
  EXPECT_EQ(out.minor, 37u);
  EXPECT_EQ(out.max_write, 1u << 20);
  EXPECT_EQ(out.max_pages, 256u);
  EXPECT_TRUE(out.flags & FUSE_DO_READDIRPLUS);
  EXPECT_TRUE(out.flags & FUSE_MAX_PAGES);
  EXPECT_FALSE(out.flags & FUSE_POSIX_LOCKS);  // locks stay in the guest kernel
  EXPECT_FALSE(out.flags & FUSE_WRITEBACK_CACHE);
  EXPECT_EQ(d.init().error(), EPROTO);  // only once
}

// A provider with nothing to flush says so once; the guest kernel then stops
// sending FLUSH (a round trip per close()). Unknown handles stay EBADF.
TEST(FuseServer, FlushIsDeclinedWhenTheProviderHasNothingToFlush) {
  ServerDriver d(memory());
  d.init();
  int err = 0;
  auto [node, fh] = d.create(1, "f", err);
  ASSERT_EQ(err, 0);
  fuse_flush_in in{};
  in.fh = fh;
  EXPECT_EQ(d.send(RequestBuilder(FUSE_FLUSH, node).add(in)).error(), ENOSYS);
  in.fh = 999;
  EXPECT_EQ(d.send(RequestBuilder(FUSE_FLUSH, node).add(in)).error(), EBADF);
  EXPECT_EQ(d.release(node, fh).error(), 0);
}

TEST(FuseServer, RefusesOldKernelsAndEarlyRequests) {
  ServerDriver d(memory());
  EXPECT_EQ(d.lookup(1, "x").error(), EIO);
  EXPECT_EQ(d.init(20).error(), EPROTO);
  EXPECT_FALSE(d.server.initialized());
}

TEST(FuseServer, CreateWriteReadAndList) {
  ServerDriver d(memory());
  d.init();
  ASSERT_EQ(d.mkdir(1, "dir").error(), 0);
  std::uint64_t dir = d.lookup_id(1, "dir");
  ASSERT_NE(dir, 0u);
  int err = 0;
  auto [node, fh] = d.create(dir, "f.txt", err);
  ASSERT_EQ(err, 0);
  EXPECT_EQ(d.write(node, fh, 0, "hello world").as<fuse_write_out>().size, 11u);
  EXPECT_EQ(d.release(node, fh).error(), 0);
  auto o = d.open(node, O_RDONLY);
  ASSERT_EQ(o.error(), 0);
  std::uint64_t rfh = o.as<fuse_open_out>().fh;
  EXPECT_EQ(d.read(node, rfh, 6, 100).text(), "world");
  EXPECT_EQ(d.release(node, rfh).error(), 0);

  auto od = d.open(dir, O_RDONLY, true);
  ASSERT_EQ(od.error(), 0);
  auto list = d.read(dir, od.as<fuse_open_out>().fh, 0, 4096, FUSE_READDIRPLUS);
  ASSERT_EQ(list.error(), 0);
  auto entries = parse_dirents(list.payload, true);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].name, ".");
  EXPECT_EQ(entries[0].nodeid, 0u);  // no lookup counted for "." and ".."
  EXPECT_EQ(entries[2].name, "f.txt");
  EXPECT_EQ(entries[2].nodeid, node);  // the same node the kernel already has
}

TEST(FuseServer, NamesAreValidated) {
  ServerDriver d(memory());
  d.init();
  for (std::string bad : {std::string("a/b"), std::string("."), std::string(".."), std::string("")})
    EXPECT_EQ(d.lookup(1, bad).error(), EINVAL) << bad;
  // What the guest's own file systems say for an over-long name.
  EXPECT_EQ(d.lookup(1, std::string(256, 'x')).error(), ENAMETOOLONG);
  // A name without its NUL terminator.
  EXPECT_EQ(d.send(RequestBuilder(FUSE_LOOKUP, 1).add_string("abc", false)).error(), EINVAL);
  // Trailing garbage after the name.
  EXPECT_EQ(d.send(RequestBuilder(FUSE_LOOKUP, 1).add_string("abc").add_string("x")).error(), EINVAL);
  int err = 0;
  d.create(1, "x/y", err);
  EXPECT_EQ(err, EINVAL);
  fuse_rename_in rn{1};
  EXPECT_EQ(d.send(RequestBuilder(FUSE_RENAME, 1).add(rn).add_string("a").add_string("..")).error(), EINVAL);
  EXPECT_EQ(d.send(RequestBuilder(FUSE_SYMLINK, 1).add_string("l").add_string("")).error(), EINVAL);
}

TEST(FuseServer, UnknownNodesAndHandlesAreErrors) {
  ServerDriver d(memory());
  d.init();
  EXPECT_EQ(d.getattr(999).error(), ESTALE);
  EXPECT_EQ(d.lookup(999, "x").error(), ESTALE);
  EXPECT_EQ(d.read(1, 12345, 0, 10).error(), EBADF);
  EXPECT_EQ(d.write(1, 12345, 0, "x").error(), EBADF);
  EXPECT_EQ(d.release(1, 12345).error(), EBADF);
  // A directory handle is not a file handle, and the other way round.
  auto od = d.open(1, O_RDONLY, true);
  std::uint64_t dfh = od.as<fuse_open_out>().fh;
  EXPECT_EQ(d.read(1, dfh, 0, 10).error(), EBADF);
  EXPECT_EQ(d.release(1, dfh, false).error(), EBADF);
  EXPECT_EQ(d.release(1, dfh, true).error(), 0);
}

TEST(FuseServer, SizesAreBounded) {
  ServerDriver d(memory());
  d.init();
  int err = 0;
  auto [node, fh] = d.create(1, "f", err);
  ASSERT_EQ(err, 0);
  EXPECT_EQ(d.read(node, fh, 0, (1u << 20) + 1).error(), EINVAL);
  // The declared size must match the data that follows.
  fuse_write_in w{};
  w.fh = fh;
  w.size = 100;
  EXPECT_EQ(d.send(RequestBuilder(FUSE_WRITE, node).add(w).add_string("short", false)).error(), EINVAL);
  w.size = 0xffffffff;
  EXPECT_EQ(d.send(RequestBuilder(FUSE_WRITE, node).add(w)).error(), EINVAL);
  w.size = 1;
  w.offset = ~0ull;
  EXPECT_EQ(d.send(RequestBuilder(FUSE_WRITE, node).add(w).add_string("x", false)).error(), EINVAL);
}

TEST(FuseServer, BrokenFramingIsFatal) {
  ServerDriver d(memory());
  d.init();
  Bytes msg = RequestBuilder(FUSE_LOOKUP, 1).add_string("x").build();
  msg[0] = 200;  // header length disagrees with the message
  auto out = d.server.handle(msg);
  EXPECT_FALSE(out.fatal.empty());
  Bytes tiny(10, 0);
  EXPECT_FALSE(d.server.handle(tiny).fatal.empty());
  // Extensions we never negotiated.
  Bytes ext = RequestBuilder(FUSE_LOOKUP, 1).add_string("x").build();
  ext[36] = 1;
  EXPECT_FALSE(d.server.handle(ext).fatal.empty());
}

TEST(FuseServer, UnknownOpcodesGetEnosysAndLocksStayLocal) {
  ServerDriver d(memory());
  d.init();
  EXPECT_EQ(d.send(RequestBuilder(9999, 1)).error(), ENOSYS);
  EXPECT_EQ(d.send(RequestBuilder(FUSE_SETLK, 1).add(fuse_lk_in{})).error(), ENOSYS);
  EXPECT_EQ(d.send(RequestBuilder(FUSE_GETLK, 1).add(fuse_lk_in{})).error(), ENOSYS);
  EXPECT_EQ(d.send(RequestBuilder(FUSE_IOCTL, 1).add(fuse_ioctl_in{})).error(), ENOSYS);
}

TEST(FuseServer, LookupCountsMirrorTheKernel) {
  ServerDriver d(memory());
  d.init();
  std::uint64_t a = d.mkdir(1, "a").as<fuse_entry_out>().nodeid;  // first reference
  EXPECT_EQ(d.lookup_id(1, "a"), a);                              // same node, second reference
  EXPECT_EQ(d.server.nodes().size(), 2u);
  d.forget(a, 1);
  EXPECT_TRUE(d.server.nodes().contains(a));
  d.forget(a, 1);  // FORGET gets no reply; the last one drops the node
  EXPECT_FALSE(d.server.nodes().contains(a));
  // A lying FORGET for more than was looked up, or for the root, is harmless.
  d.forget(1, 100);
  d.forget(12345, 1);
  EXPECT_TRUE(d.server.nodes().contains(1));
  fuse_batch_forget_in b{1000, 0};
  d.send(RequestBuilder(FUSE_BATCH_FORGET, 0).add(b));  // count larger than the body
  EXPECT_TRUE(d.last_fatal.empty());
}

TEST(FuseServer, NegativeLookupsAreCachedEntries) {
  ServerDriver d(memory());
  d.init();
  auto r = d.lookup(1, "missing");
  EXPECT_EQ(r.error(), 0);
  auto e = r.as<fuse_entry_out>();
  EXPECT_EQ(e.nodeid, 0u);
  EXPECT_EQ(e.entry_valid, 1u);
  MountOptions no_cache;
  no_cache.entry_timeout = std::chrono::milliseconds(0);
  ServerDriver d2(memory(), no_cache);
  d2.init();
  EXPECT_EQ(d2.lookup(1, "missing").error(), ENOENT);
}

TEST(FuseServer, UnlinkWhileOpenKeepsServingTheHandle) {
  TempDir tmp;
  ServerDriver d(host_dir(tmp.path()));
  d.init();
  int err = 0;
  auto [node, fh] = d.create(1, "f", err, 02 /* O_RDWR */);
  ASSERT_EQ(err, 0);
  d.write(node, fh, 0, "still here");
  ASSERT_EQ(d.unlink(1, "f").error(), 0);
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "f"));
  auto attr = d.getattr(node);  // fstat of the unlinked file
  ASSERT_EQ(attr.error(), 0);
  EXPECT_EQ(attr.as<fuse_attr_out>().attr.size, 10u);
  EXPECT_EQ(d.read(node, fh, 0, 100).text(), "still here");
  EXPECT_EQ(d.lookup(node, "x").error(), ENOENT);  // it has no path any more
}

TEST(FuseServer, LimitsOnHandlesAndNodes) {
  ServerLimits limits;
  limits.max_handles = 2;
  limits.max_nodes = 3;
  ServerDriver d(memory(), {}, limits);
  d.init();
  int err = 0;
  d.create(1, "a", err);
  ASSERT_EQ(err, 0);
  d.create(1, "b", err);
  ASSERT_EQ(err, 0);
  d.create(1, "c", err);
  EXPECT_TRUE(err == EMFILE || err == ENFILE);
  EXPECT_EQ(d.open(1, O_RDONLY, true).error(), EMFILE);
}

TEST(FuseServer, RenameMovesNodesAndRefusesLoops) {
  ServerDriver d(memory());
  d.init();
  d.mkdir(1, "a");
  d.mkdir(1, "b");
  std::uint64_t a = d.lookup_id(1, "a");
  std::uint64_t b = d.lookup_id(1, "b");
  int err = 0;
  auto [f, fh] = d.create(a, "f", err);
  d.release(f, fh);
  fuse_rename_in rn{b};
  EXPECT_EQ(d.send(RequestBuilder(FUSE_RENAME, a).add(rn).add_string("f").add_string("g")).error(), 0);
  EXPECT_EQ(d.server.nodes().path(f), "b/g");
  // a into a/sub: cut off from the root.
  d.mkdir(a, "sub");
  std::uint64_t sub = d.lookup_id(a, "sub");
  fuse_rename_in into{sub};
  EXPECT_EQ(d.send(RequestBuilder(FUSE_RENAME, 1).add(into).add_string("a").add_string("x")).error(), EINVAL);
  fuse_rename2_in bad{b, 0x80, 0};
  EXPECT_EQ(d.send(RequestBuilder(FUSE_RENAME2, b).add(bad).add_string("g").add_string("h")).error(), EINVAL);
}

TEST(FuseServer, StateSurvivesExportAndImport) {
  TempDir tmp;
  auto provider = host_dir(tmp.path());
  ServerDriver d(provider);
  d.init();
  d.mkdir(1, "dir");
  std::uint64_t dir = d.lookup_id(1, "dir");
  int err = 0;
  auto [node, fh] = d.create(dir, "f", err, 02);
  d.write(node, fh, 0, "persisted");
  std::string state = d.server.export_state();

  // A new host process after a resume: same node ids and handles.
  ServerDriver resumed(host_dir(tmp.path()));
  ASSERT_TRUE(resumed.server.import_state(state));
  EXPECT_TRUE(resumed.server.initialized());
  EXPECT_EQ(resumed.read(node, fh, 0, 100).text(), "persisted");
  EXPECT_EQ(resumed.lookup_id(dir, "f"), node);
  EXPECT_EQ(resumed.server.nodes().path(node), "dir/f");
  EXPECT_FALSE(resumed.server.import_state(state.substr(0, state.size() / 2)));
}

// The same handle id twice in a saved state is malformed, not a second open
// file that nothing could release (found by fuzz_fuse_state).
TEST(FuseServer, AStateNamingAHandleTwiceIsRefused) {
  TempDir tmp;
  ServerDriver d(host_dir(tmp.path()));
  d.init();
  int err = 0;
  d.create(1, "f", err, 02);
  std::string state = d.server.export_state();
  // The state ends with the handle count (4 bytes) and one 21-byte handle.
  constexpr std::size_t kHandle = 8 + 8 + 4 + 1;
  ASSERT_GT(state.size(), kHandle + 4);
  const std::size_t count_at = state.size() - kHandle - 4;
  ASSERT_EQ(state[count_at], '\x01');
  std::string twice = state + state.substr(state.size() - kHandle);
  twice[count_at] = '\x02';
  ServerDriver resumed(host_dir(tmp.path()));
  EXPECT_FALSE(resumed.server.import_state(twice));
  EXPECT_TRUE(resumed.server.import_state(state));
}

TEST(FuseServer, RandomRequestsNeverCrash) {
  TempDir tmp;
  ServerDriver d(host_dir(tmp.path()));
  d.init();
  d.mkdir(1, "d");
  int err = 0;
  d.create(1, "f", err);
  std::mt19937 rng(1234);
  for (int i = 0; i < 20000; ++i) {
    auto opcode = static_cast<std::uint32_t>(rng() % 52);
    if (opcode == FUSE_INIT) opcode = FUSE_LOOKUP;
    std::uint64_t node = rng() % 4;
    RequestBuilder b(opcode, node);
    std::size_t len = rng() % 200;
    std::string body(len, '\0');
    for (auto& c : body) c = static_cast<char>(rng() % 4 == 0 ? 0 : 'a' + rng() % 26);
    if (rng() % 3 == 0)
      for (std::size_t k = 0; k < std::min<std::size_t>(8, len); ++k) body[k] = static_cast<char>(rng() % 3);
    b.add_string(body, false);
    auto out = d.server.handle(b.build());
    if (out.reply) {
      ASSERT_GE(out.reply->size(), sizeof(fuse_out_header));
    }
  }
}

}  // namespace

// Files' and directories' attributes may be cached on both transports; a file
// with several names may not (a change through one name must show through the
// others).
TEST(FuseServer, AttributesAreCachedUnlessAFileHasSeveralNames) {
  for (auto transport : {FsTransport::Serial, FsTransport::Virtiofs}) {
    MountOptions o;
    o.transport = transport;
    TempDir tmp;
    ServerDriver d(host_dir(tmp.path()), o);
    d.init();
    ASSERT_EQ(d.mkdir(1, "dir").error(), 0);
    int err = 0;
    d.create(1, "file", err);
    ASSERT_EQ(err, 0);
    EXPECT_EQ(d.lookup(1, "dir").as<fuse_entry_out>().attr_valid, 1u);
    EXPECT_EQ(d.lookup(1, "file").as<fuse_entry_out>().attr_valid, 1u);
    ASSERT_EQ(::link((tmp.path() / "file").c_str(), (tmp.path() / "host-link").c_str()), 0);
    EXPECT_EQ(d.lookup(1, "file").as<fuse_entry_out>().attr_valid, 0u);
  }
}

// link(2) through the guest answers with the node the guest already holds, so
// its kernel updates that inode's link count from the reply (virtio-fs has no
// way to tell it afterwards); the node keeps working through either name.
TEST(FuseServer, LinkNamesTheExistingNode) {
  TempDir tmp;
  ServerDriver d(host_dir(tmp.path()));
  d.init();
  ASSERT_EQ(d.mkdir(1, "sub").error(), 0);
  std::uint64_t sub = d.lookup_id(1, "sub");
  int err = 0;
  auto [file, fh] = d.create(1, "a", err, 02);
  ASSERT_EQ(err, 0);
  d.release(file, fh);
  fuse_link_in in{file};
  auto linked = d.send(RequestBuilder(FUSE_LINK, sub).add(in).add_string("b"));
  ASSERT_EQ(linked.error(), 0);
  EXPECT_EQ(linked.as<fuse_entry_out>().nodeid, file);
  EXPECT_EQ(linked.as<fuse_entry_out>().attr.nlink, 2u);
  EXPECT_EQ(d.lookup_id(sub, "b"), file);
  // The first name goes: the node lives on under the second.
  ASSERT_EQ(d.unlink(1, "a").error(), 0);
  EXPECT_EQ(d.server.nodes().path(file), "sub/b");
  EXPECT_EQ(d.getattr(file).as<fuse_attr_out>().attr.nlink, 1u);
  // Renamed, then gone altogether: detached, and forgotten at last.
  fuse_rename_in rn{1};
  ASSERT_EQ(d.send(RequestBuilder(FUSE_RENAME, sub).add(rn).add_string("b").add_string("c")).error(), 0);
  EXPECT_EQ(d.server.nodes().path(file), "c");
  ASSERT_EQ(d.unlink(1, "c").error(), 0);
  EXPECT_EQ(d.server.nodes().path(file), std::nullopt);
  d.forget(file, 3);
  EXPECT_FALSE(d.server.nodes().contains(file));
  // A link to a directory node, or from the root, never shares a node.
  fuse_link_in dir{sub};
  EXPECT_NE(d.send(RequestBuilder(FUSE_LINK, 1).add(dir).add_string("d")).error(), 0);
}

// A table whose file has names in two directories is written out and read
// back with the same ids and paths; so is version 1, written before.
TEST(FuseServer, LinkedNodesSurviveExportAndImport) {
  NodeTable t;
  auto a = t.remember(NodeTable::kRootId, "a", S_IFDIR);
  auto b = t.remember(*a, "b", S_IFDIR);
  auto f = t.remember(*b, "f", S_IFREG);
  ASSERT_TRUE(a && b && f);
  ASSERT_EQ(t.link(*f, NodeTable::kRootId, "g", S_IFREG), f);
  EXPECT_EQ(t.link(*f, *a, "h", S_IFDIR), std::nullopt);  // another type
  NodeTable back;
  ASSERT_TRUE(back.load(t.serialize()));
  EXPECT_EQ(back.path(*f), "a/b/f");
  t.detach(*b, "f");
  ASSERT_TRUE(back.load(t.serialize()));
  EXPECT_EQ(back.path(*f), "g");
  EXPECT_EQ(back.serialize(), t.serialize());

  // A directory that lost its name (replaced while the guest held it) with
  // names still under it travels too, its subtree without a path.
  auto gone = t.remember(NodeTable::kRootId, "gone", S_IFDIR);
  auto sub = t.remember(*gone, "sub", S_IFDIR);
  auto inner = t.remember(*sub, "x", S_IFREG);
  t.detach(NodeTable::kRootId, "gone");
  ASSERT_TRUE(back.load(t.serialize()));
  EXPECT_EQ(back.size(), t.size());
  EXPECT_EQ(back.path(*inner), std::nullopt);
  EXPECT_TRUE(back.contains(*sub));
  EXPECT_EQ(back.serialize(), t.serialize());

  proto::PayloadWriter v1;  // version 1: id, parent, lookups, type, name
  v1.u32(1);
  v1.u64(10);
  v1.u32(2);
  v1.u64(2), v1.u64(1), v1.u64(1), v1.u32(S_IFDIR), v1.bytes(std::string("d"));
  v1.u64(3), v1.u64(2), v1.u64(1), v1.u32(S_IFREG), v1.bytes(std::string("x"));
  std::string old(v1.data().begin(), v1.data().end());
  ASSERT_TRUE(back.load(old));
  EXPECT_EQ(back.path(3), "d/x");
  // A name under a file, or a directory with two names, is refused.
  proto::PayloadWriter bad;
  bad.u32(2);
  bad.u64(10);
  bad.u32(2);
  bad.u64(2), bad.u64(1), bad.u32(S_IFREG), bad.u32(1), bad.u64(1), bad.bytes(std::string("f"));
  bad.u64(3), bad.u64(1), bad.u32(S_IFREG), bad.u32(1), bad.u64(2), bad.bytes(std::string("x"));
  EXPECT_FALSE(back.load(std::string(bad.data().begin(), bad.data().end())));
  EXPECT_EQ(back.size(), 1u);
}

// Linux 6.6+ offers FUSE_DIRECT_IO_ALLOW_MMAP (flags2 bit 4): accepted, so
// MAP_SHARED works on direct-I/O files; nothing extended is claimed otherwise.
TEST(FuseServer, InitAcceptsDirectIoMmapWhenOffered) {
  for (std::uint32_t flags2 : {0u, 1u << 4}) {
    ServerDriver d(memory());
    fuse_init_in in{};
    in.major = 7;
    in.minor = 38;
    in.flags = FUSE_INIT_EXT | FUSE_MAX_PAGES;
    in.flags2 = flags2 | (1u << 3);  // and something we do not take
    auto out = d.send(RequestBuilder(FUSE_INIT, 0).add(in)).as<fuse_init_out>();
    EXPECT_EQ(out.flags2, flags2);
    EXPECT_EQ((out.flags & FUSE_INIT_EXT) != 0, flags2 != 0);
  }
}

// cache=auto over virtio-fs: bulk transfers skip the guest page cache
// (write-only descriptors, big files opened read-only); files that may be
// mapped or are small stay cached. Over serial, and with writeback, nothing changes.
TEST(FuseServer, OverVirtiofsBulkOpensSkipThePageCache) {
  for (auto transport : {FsTransport::Serial, FsTransport::Virtiofs}) {
    MountOptions o;
    o.transport = transport;
    auto provider = memory();
    ServerDriver d(provider, o);
    d.init();
    int err = 0;
    auto [small, small_fh] = d.create(1, "small", err, O_RDWR | O_CREAT);
    auto [big, big_fh] = d.create(1, "big", err, O_WRONLY | O_CREAT);
    ASSERT_EQ(err, 0);
    SetAttr grow;
    grow.size = kDirectReadBytes;
    ASSERT_TRUE(provider->setattr("big", grow));
    const bool vfs = transport == FsTransport::Virtiofs;
    auto flags = [&](std::uint64_t node, int open_flags) {
      return d.open(node, static_cast<std::uint32_t>(open_flags)).as<fuse_open_out>().open_flags;
    };
    EXPECT_EQ(flags(small, O_WRONLY), vfs ? FOPEN_DIRECT_IO : FOPEN_KEEP_CACHE);
    EXPECT_EQ(flags(small, O_RDONLY), FOPEN_KEEP_CACHE);
    EXPECT_EQ(flags(big, O_RDONLY), vfs ? FOPEN_DIRECT_IO : FOPEN_KEEP_CACHE);
    EXPECT_EQ(flags(big, O_RDWR), FOPEN_KEEP_CACHE);  // may be mapped MAP_SHARED
  }
}

namespace {

// virtio-fs: READ data lands in the transport's buffers and WRITE data comes
// from them; the reply is a header whose length counts the data.
TEST(FuseServer, DataCanStayInTheTransportsBuffers) {
  ServerDriver d(memory());
  d.init();
  int err = 0;
  auto [node, fh] = d.create(1, "f", err);
  ASSERT_EQ(err, 0);

  fuse_write_in w{};
  w.fh = fh;
  w.offset = 0;
  w.size = 11;
  auto head = RequestBuilder(FUSE_WRITE, node).add(w).build();
  // The header's length counts the data that is not in the message.
  fuse_in_header h;
  std::memcpy(&h, head.data(), sizeof h);
  h.len += 11;
  std::memcpy(head.data(), &h, sizeof h);
  std::string a = "hello", b = " world";
  std::vector<std::span<const char>> pieces = {a, b};
  auto out = d.server.handle(head, {{}, pieces});
  ASSERT_TRUE(out.fatal.empty()) << out.fatal;
  ASSERT_TRUE(out.reply);
  EXPECT_EQ(parse_reply(*out.reply).as<fuse_write_out>().size, 11u);

  // Data that does not add up to the WRITE's size is EINVAL, not a short write.
  std::string c = "hello";
  std::vector<std::span<const char>> too_short = {c};
  h.len = static_cast<std::uint32_t>(head.size()) + 5;
  std::memcpy(head.data(), &h, sizeof h);
  out = d.server.handle(head, {{}, too_short});
  EXPECT_EQ(parse_reply(*out.reply).error(), EINVAL);

  // Only a WRITE may leave data outside the message.
  auto lookup = RequestBuilder(FUSE_LOOKUP, 1).add_string("f").build();
  std::memcpy(&h, lookup.data(), sizeof h);
  h.len += 5;
  std::memcpy(lookup.data(), &h, sizeof h);
  EXPECT_FALSE(d.server.handle(lookup, {{}, too_short}).fatal.empty());

  auto opened = d.open(node, O_RDONLY);
  ASSERT_EQ(opened.error(), 0);
  fuse_read_in r{};
  r.fh = opened.as<fuse_open_out>().fh;
  r.offset = 2;
  r.size = 100;
  std::string x(4, '.'), y(200, '.');
  std::vector<std::span<char>> into = {x, y};
  out = d.server.handle(RequestBuilder(FUSE_READ, node).add(r).build(), {into, {}});
  ASSERT_TRUE(out.reply);
  EXPECT_EQ(out.reply->size(), sizeof(fuse_out_header));
  EXPECT_EQ(out.data_in_place, 9u);
  fuse_out_header oh;
  std::memcpy(&oh, out.reply->data(), sizeof oh);
  EXPECT_EQ(oh.len, sizeof(fuse_out_header) + 9);
  EXPECT_EQ(oh.error, 0);
  EXPECT_EQ(x + y.substr(0, 6), "llo world.");
  // Never more than the READ asked for, whatever the buffers could hold.
  r.offset = 0;
  r.size = 6;
  out = d.server.handle(RequestBuilder(FUSE_READ, node).add(r).build(), {into, {}});
  EXPECT_EQ(out.data_in_place, 6u);
  EXPECT_EQ(x + y.substr(0, 2), "hello ");
  EXPECT_EQ(y.substr(2, 4), "rld.");  // untouched from the read before
}

}  // namespace

namespace {

// A guest that resets its virtio-fs device starts a new session: every
// handle of the old one is released, its node ids mean nothing, INIT works.
TEST(FuseServer, EndSessionReleasesEverythingAndAllowsANewInit) {
  ServerDriver d(memory());
  d.init();
  int err = 0;
  auto [node, fh] = d.create(1, "f", err);
  ASSERT_EQ(err, 0);
  ASSERT_EQ(d.mkdir(1, "dir").error(), 0);
  auto od = d.open(d.lookup_id(1, "dir"), O_RDONLY, true);
  ASSERT_EQ(od.error(), 0);
  EXPECT_EQ(d.server.open_handles(), 2u);
  d.server.end_session();
  EXPECT_FALSE(d.server.initialized());
  EXPECT_EQ(d.server.open_handles(), 0u);
  EXPECT_EQ(d.server.nodes().size(), 1u);    // the root only
  EXPECT_EQ(d.lookup(1, "f").error(), EIO);  // nothing before INIT
  ASSERT_EQ(d.init().error(), 0);
  EXPECT_EQ(d.write(node, fh, 0, "x").error(), EBADF);
  EXPECT_NE(d.lookup_id(1, "f"), 0u);  // the files themselves are still there
}

}  // namespace
