// The virtio-fs back-end without QEMU: split rings built by hand in a buffer
// that stands for guest RAM (every way a hostile guest can lie about them),
// vhost-user message parsing, the back-end's negotiation, and a whole FUSE
// round trip through VirtioFsServer over a socket pair with memfd memory.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "fuse_messages.h"
#include "vfs/vhost/split_queue.h"
#include "vfs/vhost/vhost_user_backend.h"
#include "vfs/vhost/vhost_user_message.h"
#include "vfs/vhost/virtio_fs_server.h"

using namespace gondolin;
using namespace gondolin::vfs;
using namespace gondolin::vfs::vhost;

namespace {

constexpr std::uint64_t kGuestBase = 0x100000;       // guest-physical address of our buffer
constexpr std::uint64_t kUserBase = 0x7f0000000000;  // the front-end's virtual address of it
constexpr std::uint32_t kRamBytes = 1u << 20;
constexpr std::uint16_t kNext = 1, kWrite = 2, kIndirect = 4;

// A split ring of `size` entries at the start of a fake guest RAM; data
// buffers live from offset 64 KiB on.
class FakeRing {
 public:
  explicit FakeRing(std::uint32_t size = 8) : size_(size), ram_(kRamBytes) {
    memory_.add_unowned_region_for_test({kGuestBase, kRamBytes, kUserBase, 0}, ram_.data());
    queue_.start(memory_, size_, layout(), 0, 4096);
  }
  RingLayout layout() { return {ram_.data() + kDesc, ram_.data() + kAvail, ram_.data() + kUsed}; }
  void set_desc(std::uint16_t i, std::uint64_t gpa, std::uint32_t len, std::uint16_t flags, std::uint16_t next = 0) {
    std::uint8_t* d = ram_.data() + kDesc + 16 * i;
    std::memcpy(d, &gpa, 8);
    std::memcpy(d + 8, &len, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
  }
  // Offers chain `head` and bumps avail->idx by `bump`.
  void offer(std::uint16_t head, std::uint16_t bump = 1) {
    std::uint16_t idx = avail_idx();
    std::memcpy(ram_.data() + kAvail + 4 + 2 * (idx % size_), &head, 2);
    idx = static_cast<std::uint16_t>(idx + bump);
    std::memcpy(ram_.data() + kAvail + 2, &idx, 2);
  }
  std::uint16_t avail_idx() const { return load16(kAvail + 2); }
  std::uint16_t used_idx() const { return load16(kUsed + 2); }
  std::pair<std::uint32_t, std::uint32_t> used_elem(std::uint16_t i) const {
    std::uint32_t id, len;
    std::memcpy(&id, ram_.data() + kUsed + 4 + 8 * i, 4);
    std::memcpy(&len, ram_.data() + kUsed + 8 + 8 * i, 4);
    return {id, len};
  }
  std::uint8_t* at(std::uint64_t gpa) { return ram_.data() + (gpa - kGuestBase); }
  SplitQueue& queue() { return queue_; }

  static constexpr std::uint64_t kData = kGuestBase + 0x10000;

 private:
  std::uint16_t load16(std::size_t off) const {
    std::uint16_t v;
    std::memcpy(&v, ram_.data() + off, 2);
    return v;
  }
  static constexpr std::size_t kDesc = 0, kAvail = 0x4000, kUsed = 0x8000;
  std::uint32_t size_;
  std::vector<std::uint8_t> ram_;
  GuestMemory memory_;
  SplitQueue queue_;
};

TEST(VhostSplitQueue, EmptyRingYieldsNothing) {
  FakeRing r;
  DescriptorChain c;
  EXPECT_FALSE(r.queue().pop(c));
  EXPECT_FALSE(r.queue().broken());
}

// What the server's thread watches between bursts instead of sleeping.
TEST(VhostSplitQueue, HasAvailableSaysWhetherPopWouldTakeAChain) {
  FakeRing r;
  EXPECT_FALSE(r.queue().has_available());
  r.set_desc(0, FakeRing::kData, 16, 0);
  r.offer(0);
  EXPECT_TRUE(r.queue().has_available());
  DescriptorChain c;
  ASSERT_TRUE(r.queue().pop(c));
  EXPECT_FALSE(r.queue().has_available()) << "taken, even before it is returned";
  r.offer(0);
  r.queue().stop();
  EXPECT_FALSE(r.queue().has_available()) << "a stopped ring is not watched";
}

TEST(VhostSplitQueue, GathersRequestAndScattersReply) {
  FakeRing r;
  std::memcpy(r.at(FakeRing::kData), "hello", 5);
  std::memcpy(r.at(FakeRing::kData + 100), " world", 6);
  r.set_desc(3, FakeRing::kData, 5, kNext, 5);
  r.set_desc(5, FakeRing::kData + 100, 6, kNext, 1);
  r.set_desc(1, FakeRing::kData + 200, 4, kWrite | kNext, 2);
  r.set_desc(2, FakeRing::kData + 300, 8, kWrite);
  r.offer(3);
  DescriptorChain c;
  ASSERT_TRUE(r.queue().pop(c)) << r.queue().error();
  EXPECT_EQ(c.head, 3);
  auto req = c.gather();
  EXPECT_EQ(std::string(req.begin(), req.end()), "hello world");
  EXPECT_EQ(c.writable_bytes, 12u);
  const std::string reply = "0123456789";
  EXPECT_EQ(c.scatter({reinterpret_cast<const std::uint8_t*>(reply.data()), reply.size()}), 10u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(r.at(FakeRing::kData + 200)), 4), "0123");
  EXPECT_EQ(std::string(reinterpret_cast<char*>(r.at(FakeRing::kData + 300)), 6), "456789");
  r.queue().push_used(c.head, 10);
  EXPECT_EQ(r.used_idx(), 1);
  EXPECT_EQ(r.used_elem(0), (std::pair<std::uint32_t, std::uint32_t>{3, 10}));
  EXPECT_FALSE(r.queue().pop(c));
}

// File data is moved without copying the request: the head is a copy, the
// rest pieces that point into guest memory.
TEST(VhostSplitQueue, HeadCopiesAndDataPieces) {
  FakeRing r;
  std::memcpy(r.at(FakeRing::kData), "hello", 5);
  std::memcpy(r.at(FakeRing::kData + 100), " world", 6);
  r.set_desc(0, FakeRing::kData, 5, kNext, 1);
  r.set_desc(1, FakeRing::kData + 100, 6, kNext, 2);
  r.set_desc(2, FakeRing::kData + 200, 4, kWrite | kNext, 3);
  r.set_desc(3, FakeRing::kData + 300, 8, kWrite);
  r.offer(0);
  DescriptorChain c;
  ASSERT_TRUE(r.queue().pop(c)) << r.queue().error();
  auto head = c.gather(7);
  EXPECT_EQ(std::string(head.begin(), head.end()), "hello w");
  EXPECT_EQ(c.gather(100).size(), 11u);
  auto rest = c.readable_from(3);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(std::string(rest[0].begin(), rest[0].end()), "lo");
  EXPECT_EQ(std::string(rest[1].begin(), rest[1].end()), " world");
  EXPECT_TRUE(c.readable_from(11).empty());
  auto space = c.writable_from(6);
  ASSERT_EQ(space.size(), 1u);
  EXPECT_EQ(space[0].data(), reinterpret_cast<char*>(r.at(FakeRing::kData + 302)));
  EXPECT_EQ(space[0].size(), 6u);
}

TEST(VhostSplitQueue, ScatterStopsAtTheWritableSpace) {
  FakeRing r;
  r.set_desc(0, FakeRing::kData, 4, kWrite);
  r.offer(0);
  DescriptorChain c;
  ASSERT_TRUE(r.queue().pop(c));
  std::vector<std::uint8_t> big(100, 7);
  EXPECT_EQ(c.scatter(big), 4u);
}

TEST(VhostSplitQueue, LoopingChainBreaksTheQueue) {
  FakeRing r;
  r.set_desc(0, FakeRing::kData, 4, kNext, 1);
  r.set_desc(1, FakeRing::kData, 4, kNext, 0);
  r.offer(0);
  DescriptorChain c;
  EXPECT_FALSE(r.queue().pop(c));
  EXPECT_TRUE(r.queue().broken());
  EXPECT_NE(r.queue().error().find("loop"), std::string::npos);
  // Broken for good, even once the guest "fixes" the ring.
  r.set_desc(1, FakeRing::kData, 4, 0);
  EXPECT_FALSE(r.queue().pop(c));
}

TEST(VhostSplitQueue, SelfLoopBreaksTheQueue) {
  FakeRing r;
  r.set_desc(2, FakeRing::kData, 4, kNext, 2);
  r.offer(2);
  DescriptorChain c;
  EXPECT_FALSE(r.queue().pop(c));
  EXPECT_TRUE(r.queue().broken());
}

TEST(VhostSplitQueue, HostileIndicesAreRefused) {
  {
    FakeRing r;  // head beyond the ring
    r.offer(8);
    DescriptorChain c;
    EXPECT_FALSE(r.queue().pop(c));
    EXPECT_TRUE(r.queue().broken());
  }
  {
    FakeRing r;  // next beyond the ring
    r.set_desc(0, FakeRing::kData, 4, kNext, 9);
    r.offer(0);
    DescriptorChain c;
    EXPECT_FALSE(r.queue().pop(c));
    EXPECT_TRUE(r.queue().broken());
  }
  {
    FakeRing r;  // avail index jumps by more than the ring holds
    r.set_desc(0, FakeRing::kData, 4, 0);
    r.offer(0, 9);
    DescriptorChain c;
    EXPECT_FALSE(r.queue().pop(c));
    EXPECT_NE(r.queue().error().find("available"), std::string::npos);
  }
  {
    FakeRing r;  // avail index moved backwards (wraps to 65535 pending)
    r.offer(0, 0xffff);
    DescriptorChain c;
    EXPECT_FALSE(r.queue().pop(c));
    EXPECT_TRUE(r.queue().broken());
  }
}

TEST(VhostSplitQueue, BuffersOutsideGuestMemoryAreRefused) {
  struct Case {
    std::uint64_t gpa;
    std::uint32_t len;
  };
  for (Case k : {Case{0, 16}, Case{kGuestBase - 1, 2}, Case{kGuestBase + kRamBytes - 4, 5},
                 Case{kGuestBase + kRamBytes, 0}, Case{~0ull - 3, 16}, Case{kGuestBase, 0xffffffffu}}) {
    FakeRing r;
    r.set_desc(0, k.gpa, k.len, 0);
    r.offer(0);
    DescriptorChain c;
    EXPECT_FALSE(r.queue().pop(c)) << k.gpa << "+" << k.len;
    EXPECT_TRUE(r.queue().broken());
  }
  FakeRing r;  // the very last byte is fine
  r.set_desc(0, kGuestBase + kRamBytes - 1, 1, 0);
  r.offer(0);
  DescriptorChain c;
  EXPECT_TRUE(r.queue().pop(c)) << r.queue().error();
}

TEST(VhostSplitQueue, FeaturesWeDidNotOfferAndBadOrderAreRefused) {
  {
    FakeRing r;
    r.set_desc(0, FakeRing::kData, 16, kIndirect);
    r.offer(0);
    DescriptorChain c;
    EXPECT_FALSE(r.queue().pop(c));
    EXPECT_NE(r.queue().error().find("indirect"), std::string::npos);
  }
  {
    FakeRing r;  // readable after writable
    r.set_desc(0, FakeRing::kData, 4, kWrite | kNext, 1);
    r.set_desc(1, FakeRing::kData, 4, 0);
    r.offer(0);
    DescriptorChain c;
    EXPECT_FALSE(r.queue().pop(c));
    EXPECT_TRUE(r.queue().broken());
  }
  {
    FakeRing r;  // a request longer than the bound (4096 here)
    r.set_desc(0, FakeRing::kData, 4000, kNext, 1);
    r.set_desc(1, FakeRing::kData, 97, 0);
    r.offer(0);
    DescriptorChain c;
    EXPECT_FALSE(r.queue().pop(c));
    EXPECT_TRUE(r.queue().broken());
  }
}

TEST(VhostSplitQueue, IndicesWrapAround) {
  FakeRing r(4);
  r.set_desc(0, FakeRing::kData, 1, 0);
  DescriptorChain c;
  for (int i = 0; i < 70000; ++i) {
    r.offer(0);
    ASSERT_TRUE(r.queue().pop(c)) << i << ": " << r.queue().error();
    r.queue().push_used(c.head, 0);
  }
  EXPECT_EQ(r.used_idx(), static_cast<std::uint16_t>(70000));
}

// ---- messages ---------------------------------------------------------------------

std::vector<std::uint8_t> header_bytes(std::uint32_t request, std::uint32_t flags, std::uint32_t size) {
  std::vector<std::uint8_t> b(12);
  std::memcpy(b.data(), &request, 4);
  std::memcpy(b.data() + 4, &flags, 4);
  std::memcpy(b.data() + 8, &size, 4);
  return b;
}

TEST(VhostUserMessage, HeaderIsChecked) {
  std::string error;
  EXPECT_TRUE(decode_header(header_bytes(1, 1, 0), error));
  EXPECT_TRUE(decode_header(header_bytes(5, 1 | kFlagNeedReply, 264), error));
  EXPECT_FALSE(decode_header(header_bytes(1, 0, 0), error));  // version 0
  EXPECT_FALSE(decode_header(header_bytes(1, 2, 0), error));
  EXPECT_FALSE(decode_header(header_bytes(1, 1 | kFlagReply, 0), error));
  EXPECT_FALSE(decode_header(header_bytes(1, 1, kMaxPayload + 1), error));
  EXPECT_FALSE(decode_header(std::vector<std::uint8_t>(11), error));
}

TEST(VhostUserMessage, PayloadsHaveExactSizes) {
  EXPECT_TRUE(decode_u64(std::vector<std::uint8_t>(8)));
  EXPECT_FALSE(decode_u64(std::vector<std::uint8_t>(7)));
  EXPECT_FALSE(decode_u64(std::vector<std::uint8_t>(9)));
  EXPECT_TRUE(decode_vring_state(std::vector<std::uint8_t>(8)));
  EXPECT_TRUE(decode_vring_addr(std::vector<std::uint8_t>(40)));
  EXPECT_FALSE(decode_vring_addr(std::vector<std::uint8_t>(39)));
  auto table = [](std::uint32_t count, std::size_t size) {
    std::vector<std::uint8_t> p(size);
    std::memcpy(p.data(), &count, 4);
    return p;
  };
  EXPECT_EQ(decode_memory_table(table(2, 8 + 64))->size(), 2u);
  EXPECT_EQ(decode_memory_table(table(1, 8 + 256))->size(), 1u);  // unused slots are fine
  EXPECT_FALSE(decode_memory_table(table(0, 8)));
  EXPECT_FALSE(decode_memory_table(table(9, 8 + 9 * 32)));
  EXPECT_FALSE(decode_memory_table(table(3, 8 + 64)));
  EXPECT_FALSE(decode_memory_table(table(0xffffffff, 8 + 256)));
  EXPECT_FALSE(decode_memory_table(std::vector<std::uint8_t>(4)));
}

// ---- back-end negotiation -----------------------------------------------------------

Message msg(Request r, std::vector<std::uint8_t> payload = {}, std::uint32_t flags = 0) {
  Message m;
  m.header = {static_cast<std::uint32_t>(r), kFlagVersion | flags, static_cast<std::uint32_t>(payload.size())};
  m.payload = std::move(payload);
  return m;
}

std::uint64_t reply_u64(const VhostUserBackend::Outcome& o) {
  EXPECT_EQ(o.reply.size(), 20u);
  std::uint64_t v = 0;
  if (o.reply.size() == 20) std::memcpy(&v, o.reply.data() + 12, 8);
  return v;
}

TEST(VhostUserBackend, OffersOnlyWhatItImplements) {
  VhostUserBackend b(2, 4096);
  std::uint64_t f = reply_u64(b.handle(msg(Request::GetFeatures)));
  EXPECT_EQ(f, kFeatureVersion1 | kFeatureProtocolFeatures | kFeatureLogAll);
  EXPECT_FALSE(f & (1ull << 28));  // indirect descriptors
  EXPECT_FALSE(f & (1ull << 29));  // event index
  // Without a device that can save its state, DEVICE_STATE is not offered.
  EXPECT_EQ(reply_u64(b.handle(msg(Request::GetProtocolFeatures))),
            kProtocolFeatureMq | kProtocolFeatureLogShmfd | kProtocolFeatureReplyAck);
  EXPECT_EQ(reply_u64(b.handle(msg(Request::GetQueueNum))), 2u);
  EXPECT_NE(b.handle(msg(Request::SetFeatures, encode_u64(kFeatureVersion1 | (1ull << 28)))).error, "");
  EXPECT_NE(b.handle(msg(Request::SetProtocolFeatures, encode_u64(kProtocolFeatureDeviceState))).error, "");
}

TEST(VhostUserBackend, RefusesUnknownAndMalformedRequests) {
  VhostUserBackend b(2, 4096);
  auto o = b.handle(msg(static_cast<Request>(24)));  // GET_CONFIG: not offered
  EXPECT_NE(o.error.find("not supported"), std::string::npos);
  EXPECT_NE(b.handle(msg(Request::SetVringNum, encode_vring_state({0, 100}))).error, "");  // not a power of two
  EXPECT_NE(b.handle(msg(Request::SetVringNum, encode_vring_state({2, 8}))).error, "");    // no ring 2
  EXPECT_NE(b.handle(msg(Request::SetVringBase, encode_vring_state({0, 0x10000}))).error, "");
  EXPECT_NE(b.handle(msg(Request::SetVringKick, encode_u64(0))).error, "");           // fd missing
  EXPECT_NE(b.handle(msg(Request::SetVringKick, encode_u64(kVringNoFd))).error, "");  // polling
  EXPECT_NE(b.handle(msg(Request::SetVringCall, encode_u64(1ull << 9 | kVringNoFd))).error, "");
  EXPECT_NE(b.handle(msg(Request::SetMemTable, encode_u64(1))).error, "");
  EXPECT_EQ(b.handle(msg(Request::SetVringCall, encode_u64(1 | kVringNoFd))).error, "");
}

TEST(VhostUserBackend, AcksWhenAskedAfterReplyAckIsNegotiated) {
  VhostUserBackend b(2, 4096);
  EXPECT_TRUE(b.handle(msg(Request::SetOwner, {}, kFlagNeedReply)).reply.empty());  // not negotiated yet
  ASSERT_EQ(b.handle(msg(Request::SetProtocolFeatures, encode_u64(kProtocolFeatureReplyAck))).error, "");
  EXPECT_EQ(reply_u64(b.handle(msg(Request::SetOwner, {}, kFlagNeedReply))), 0u);
  EXPECT_TRUE(b.handle(msg(Request::SetOwner)).reply.empty());
}

// ---- a whole round trip over a socket, as QEMU would drive it ---------------------------

class FrontEnd {
 public:
  explicit FrontEnd(int socket) : socket_(socket) {}
  void send(Request r, const std::vector<std::uint8_t>& payload, std::vector<int> fds = {}) {
    auto bytes = header_bytes(static_cast<std::uint32_t>(r), kFlagVersion, static_cast<std::uint32_t>(payload.size()));
    bytes.insert(bytes.end(), payload.begin(), payload.end());
    iovec iov{bytes.data(), bytes.size()};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)]{};
    if (!fds.empty()) {
      m.msg_control = control;
      m.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    ASSERT_EQ(::sendmsg(socket_, &m, 0), static_cast<ssize_t>(bytes.size()));
  }
  std::vector<std::uint8_t> receive_reply() {
    std::vector<std::uint8_t> h(12);
    EXPECT_EQ(::recv(socket_, h.data(), 12, MSG_WAITALL), 12);
    std::uint32_t size;
    std::memcpy(&size, h.data() + 8, 4);
    std::vector<std::uint8_t> p(size);
    if (size) {
      EXPECT_EQ(::recv(socket_, p.data(), size, MSG_WAITALL), static_cast<ssize_t>(size));
    }
    return p;
  }

 private:
  int socket_;
};

TEST(VirtioFsServer, AnswersFuseInitThroughSharedMemory) {
  constexpr std::size_t kRam = 1u << 20;
  UniqueFd memfd(::memfd_create("guest-ram", MFD_CLOEXEC));
  ASSERT_TRUE(memfd);
  ASSERT_EQ(::ftruncate(memfd.get(), kRam), 0);
  void* ram = ::mmap(nullptr, kRam, PROT_READ | PROT_WRITE, MAP_SHARED, memfd.get(), 0);
  ASSERT_NE(ram, MAP_FAILED);
  auto* base = static_cast<std::uint8_t*>(ram);
  UniqueFd kick(::eventfd(0, EFD_CLOEXEC)), call(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));

  VirtioFsServer server(std::make_unique<FuseServer>(memory(), MountOptions{}), "test");
  UniqueFd qemu_end = server.create_socket();
  std::mutex death_mutex;
  std::vector<std::string> deaths;  // written by the server's thread
  auto death_count = [&] {
    std::lock_guard lock(death_mutex);
    return deaths.size();
  };
  server.start([&](const std::string& why) {
    std::lock_guard lock(death_mutex);
    deaths.push_back(why);
  });
  FrontEnd fe(qemu_end.get());

  fe.send(Request::GetFeatures, {});
  fe.receive_reply();
  // The device offers DEVICE_STATE; a front-end that does not take it (QEMU
  // 7.2) cannot snapshot the mount, and the server says so.
  fe.send(Request::GetProtocolFeatures, {});
  std::uint64_t offered = 0;
  auto offer = fe.receive_reply();
  ASSERT_EQ(offer.size(), 8u);
  std::memcpy(&offered, offer.data(), 8);
  EXPECT_TRUE(offered & kProtocolFeatureDeviceState);
  fe.send(Request::SetFeatures, encode_u64(kFeatureVersion1 | kFeatureProtocolFeatures));
  fe.send(Request::SetProtocolFeatures, encode_u64(kProtocolFeatureMq));
  fe.send(Request::SetOwner, {});
  std::vector<std::uint8_t> table(8 + 32);
  std::uint32_t one = 1;
  std::uint64_t region[4] = {0 /*gpa*/, kRam, kUserBase, 0};
  std::memcpy(table.data(), &one, 4);
  std::memcpy(table.data() + 8, region, 32);
  fe.send(Request::SetMemTable, table, {memfd.get()});
  // Ring 1 (requests): 8 entries, desc at 0, avail at 0x1000, used at 0x2000.
  fe.send(Request::SetVringNum, encode_vring_state({1, 8}));
  fe.send(Request::SetVringBase, encode_vring_state({1, 0}));
  std::vector<std::uint8_t> addr(40);
  std::uint32_t ring = 1;
  std::uint64_t desc = kUserBase, used = kUserBase + 0x2000, avail = kUserBase + 0x1000;
  std::memcpy(addr.data(), &ring, 4);
  std::memcpy(addr.data() + 8, &desc, 8);
  std::memcpy(addr.data() + 16, &used, 8);
  std::memcpy(addr.data() + 24, &avail, 8);
  fe.send(Request::SetVringAddr, addr);
  fe.send(Request::SetVringCall, encode_u64(1), {call.get()});
  fe.send(Request::SetVringKick, encode_u64(1), {kick.get()});
  fe.send(Request::SetVringEnable, encode_vring_state({1, 1}));

  // FUSE_INIT at 0x10000, reply space at 0x20000, as the guest driver lays it out.
  fuse_init_in in{};
  in.major = 7;
  in.minor = 36;
  in.max_readahead = 1 << 20;
  in.flags = FUSE_MAX_PAGES;
  auto request = vfs::testing::RequestBuilder(FUSE_INIT, 0).add(in).build();
  std::memcpy(base + 0x10000, request.data(), request.size());
  auto put_desc = [&](int i, std::uint64_t gpa, std::uint32_t len, std::uint16_t flags, std::uint16_t next) {
    std::memcpy(base + 16 * i, &gpa, 8);
    std::memcpy(base + 16 * i + 8, &len, 4);
    std::memcpy(base + 16 * i + 12, &flags, 2);
    std::memcpy(base + 16 * i + 14, &next, 2);
  };
  put_desc(0, 0x10000, static_cast<std::uint32_t>(request.size()), kNext, 1);
  put_desc(1, 0x20000, sizeof(fuse_out_header) + sizeof(fuse_init_out), kWrite, 0);
  std::uint16_t head = 0, idx = 1;
  std::memcpy(base + 0x1000 + 4, &head, 2);
  __atomic_store_n(reinterpret_cast<std::uint16_t*>(base + 0x1000 + 2), idx, __ATOMIC_RELEASE);
  ::eventfd_write(kick.get(), 1);

  pollfd p{call.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1) << "no interrupt from the back-end";
  EXPECT_EQ(__atomic_load_n(reinterpret_cast<std::uint16_t*>(base + 0x2000 + 2), __ATOMIC_ACQUIRE), 1);
  std::uint32_t used_len;
  std::memcpy(&used_len, base + 0x2000 + 8, 4);
  EXPECT_EQ(used_len, sizeof(fuse_out_header) + sizeof(fuse_init_out));
  fuse_out_header out_header;
  fuse_init_out out;
  std::memcpy(&out_header, base + 0x20000, sizeof out_header);
  std::memcpy(&out, base + 0x20000 + sizeof out_header, sizeof out);
  EXPECT_EQ(out_header.error, 0);
  EXPECT_EQ(out.major, 7u);
  EXPECT_EQ(out.max_write, 1u << 20);
  EXPECT_FALSE(server.state_migratable());  // negotiated without DEVICE_STATE, long before that reply

  // A hostile descriptor afterwards ends the mount with a reason.
  put_desc(2, 0xfffff000, 0x2000, 0, 0);
  head = 2;
  std::memcpy(base + 0x1000 + 4 + 2, &head, 2);
  __atomic_store_n(reinterpret_cast<std::uint16_t*>(base + 0x1000 + 2), std::uint16_t{2}, __ATOMIC_RELEASE);
  ::eventfd_write(kick.get(), 1);
  for (int i = 0; i < 500 && death_count() == 0; ++i) ::poll(nullptr, 0, 10);
  server.stop();  // joins the thread: `deaths` is ours again
  ASSERT_EQ(deaths.size(), 1u);
  EXPECT_NE(deaths[0].find("outside guest memory"), std::string::npos) << deaths[0];
  ::munmap(ram, kRam);
}

}  // namespace
