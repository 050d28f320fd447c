// The virtio-fs back-end's side of a migration, without QEMU: the device
// state moving through a pipe (SET_DEVICE_STATE_FD / CHECK_DEVICE_STATE) in
// both directions, bounded and refused when damaged, a FUSE session with an
// open file carried from one server to another, and the dirty log marking
// exactly the guest pages the back-end wrote.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "fuse_messages.h"
#include "gondolin/vfs.h"
#include "temp_dir.h"
#include "vfs/vhost/vhost_user_backend.h"
#include "vfs/vhost/virtio_fs_server.h"

using namespace gondolin;
using namespace gondolin::vfs;
using namespace gondolin::vfs::vhost;

namespace {

Message msg(Request r, std::vector<std::uint8_t> payload = {}) {
  Message m;
  m.header = {static_cast<std::uint32_t>(r), kFlagVersion, static_cast<std::uint32_t>(payload.size())};
  m.payload = std::move(payload);
  return m;
}

Message with_fd(Message m, int fd) {
  m.fds.emplace_back(::dup(fd));
  return m;
}

std::uint64_t reply_u64(const VhostUserBackend::Outcome& o) {
  EXPECT_EQ(o.error, "");
  EXPECT_EQ(o.reply.size(), 20u);
  std::uint64_t v = ~0ull;
  if (o.reply.size() == 20) std::memcpy(&v, o.reply.data() + 12, 8);
  return v;
}

std::vector<std::uint8_t> state_request(std::uint32_t direction, std::uint32_t phase = 0) {
  std::vector<std::uint8_t> p(8);
  std::memcpy(p.data(), &direction, 4);
  std::memcpy(p.data() + 4, &phase, 4);
  return p;
}

struct Pipe {
  UniqueFd read, write;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read.reset(fds[0]);
    write.reset(fds[1]);
  }
};

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

void negotiate(VhostUserBackend& b, std::uint64_t protocol) {
  ASSERT_EQ(b.handle(msg(Request::SetFeatures, encode_u64(kFeatureVersion1 | kFeatureProtocolFeatures))).error, "");
  ASSERT_EQ(b.handle(msg(Request::SetProtocolFeatures, encode_u64(protocol))).error, "");
}

// Saves through `b` and returns what the front-end read from the pipe.
std::string save_through(VhostUserBackend& b) {
  Pipe p;
  EXPECT_EQ(
      reply_u64(b.handle(with_fd(msg(Request::SetDeviceStateFd, state_request(kStateDirectionSave)), p.write.get()))),
      kStateReplyNoFd);
  p.write.reset();  // the back-end holds its own copy
  std::string bytes = read_all(p.read.get());
  EXPECT_EQ(reply_u64(b.handle(msg(Request::CheckDeviceState))), 0u);
  return bytes;
}

// Loads `bytes` through `b`; returns CHECK_DEVICE_STATE's answer.
std::uint64_t load_through(VhostUserBackend& b, const std::string& bytes) {
  Pipe p;
  EXPECT_EQ(
      reply_u64(b.handle(with_fd(msg(Request::SetDeviceStateFd, state_request(kStateDirectionLoad)), p.read.get()))),
      kStateReplyNoFd);
  p.read.reset();
  std::thread writer([&] {
    std::size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(p.write.get(), bytes.data() + done, bytes.size() - done);
      if (n <= 0) break;  // the back-end stopped reading (a bounded load)
      done += static_cast<std::size_t>(n);
    }
    p.write.reset();
  });
  writer.join();
  return reply_u64(b.handle(msg(Request::CheckDeviceState)));
}

TEST(VhostMigration, DeviceStateMovesThroughThePipeBothWays) {
  // Larger than a pipe's buffer: the back-end must answer before the bytes move.
  const std::string state(300000, 'S');
  std::string loaded;
  VhostUserBackend source(2, 4096, {[&] { return state; }, [](std::string_view) { return std::string(); }});
  EXPECT_TRUE(reply_u64(source.handle(msg(Request::GetProtocolFeatures))) & kProtocolFeatureDeviceState);
  negotiate(source, kProtocolFeatureDeviceState | kProtocolFeatureReplyAck);
  EXPECT_TRUE(source.state_migration_negotiated());
  EXPECT_EQ(save_through(source), state);

  VhostUserBackend target(2, 4096,
                          {[] { return std::string(); },
                           [&](std::string_view s) {
                             loaded = s;
                             return std::string();
                           }});
  negotiate(target, kProtocolFeatureDeviceState);
  EXPECT_EQ(load_through(target, state), 0u);
  EXPECT_EQ(loaded, state);
  EXPECT_EQ(target.state_error(), "");
}

TEST(VhostMigration, RefusedAndOversizedStatesFailTheCheck) {
  VhostUserBackend refusing(2, 4096,
                            {[] { return std::string(); },
                             [](std::string_view) { return std::string("the saved FUSE session is damaged"); }});
  negotiate(refusing, kProtocolFeatureDeviceState);
  EXPECT_EQ(load_through(refusing, "garbage"), 1u);
  EXPECT_EQ(refusing.state_error(), "the saved FUSE session is damaged");

  bool called = false;
  VhostUserBackend bounded(2, 4096,
                           {[] { return std::string(); },
                            [&](std::string_view) {
                              called = true;
                              return std::string();
                            },
                            1000});
  negotiate(bounded, kProtocolFeatureDeviceState);
  EXPECT_EQ(load_through(bounded, std::string(5000, 'x')), 1u);
  EXPECT_FALSE(called);
  EXPECT_NE(bounded.state_error().find("larger than 1000 bytes"), std::string::npos) << bounded.state_error();
}

TEST(VhostMigration, MalformedStateRequestsAreRefused) {
  Pipe p;
  VhostUserBackend b(2, 4096, {[] { return std::string(); }, [](std::string_view) { return std::string(); }});
  // Not negotiated yet.
  EXPECT_NE(b.handle(with_fd(msg(Request::SetDeviceStateFd, state_request(0)), p.read.get())).error, "");
  negotiate(b, kProtocolFeatureDeviceState);
  EXPECT_NE(b.handle(with_fd(msg(Request::SetDeviceStateFd, state_request(2)), p.read.get())).error.find("direction"),
            std::string::npos);
  EXPECT_NE(b.handle(with_fd(msg(Request::SetDeviceStateFd, state_request(0, 1)), p.read.get())).error.find("phase"),
            std::string::npos);
  EXPECT_NE(b.handle(msg(Request::SetDeviceStateFd, state_request(0))).error.find("one fd"), std::string::npos);
  EXPECT_NE(b.handle(with_fd(msg(Request::SetDeviceStateFd, {1, 2, 3}), p.read.get())).error, "");
  // A CHECK without a transfer is answered "failed", not crashed on.
  EXPECT_EQ(reply_u64(b.handle(msg(Request::CheckDeviceState))), 1u);
}

// ---- a FUSE session carried from one server to another ------------------------------

TEST(VhostMigration, OpenFilesSurviveAndVanishedOnesAreStale) {
  vfs::testing::TempDir dir;
  vfs::testing::ServerDriver source(host_dir(dir.path()));
  source.init();
  int err = 0;
  // O_WRONLY|O_CREAT|O_EXCL: re-opening after the resume must not create (or fail) again.
  auto [kept, kept_fh] = source.create(1, "kept.txt", err, 0301);
  ASSERT_EQ(err, 0);
  auto [gone, gone_fh] = source.create(1, "gone.txt", err, 0302);
  ASSERT_EQ(err, 0);
  EXPECT_EQ(source.write(kept, kept_fh, 0, "0123456789").error(), 0);
  std::string session = source.server.export_state();
  ASSERT_EQ(::unlink((dir.path() / "gone.txt").c_str()), 0);

  vfs::testing::ServerDriver target(host_dir(dir.path()));
  ASSERT_TRUE(target.server.import_state(session));
  EXPECT_EQ(target.write(kept, kept_fh, 10, "ab").error(), 0);  // the writer goes on at its offset
  EXPECT_EQ(target.read(gone, gone_fh, 0, 3).error(), ESTALE);
  EXPECT_EQ(target.write(gone, gone_fh, 0, "x").error(), ESTALE);
  EXPECT_EQ(target.release(gone, gone_fh).error(), 0);
  EXPECT_EQ(target.read(gone, gone_fh, 0, 3).error(), EBADF);  // released: unknown now
  auto reopened = target.open(target.lookup_id(1, "kept.txt"), O_RDONLY);
  ASSERT_EQ(reopened.error(), 0);
  EXPECT_EQ(target.read(kept, reopened.as<fuse_open_out>().fh, 0, 100).text(), "0123456789ab");
}

// ---- the dirty log ------------------------------------------------------------------

TEST(VhostMigration, DirtyLogMarksPagesWithinItsSize) {
  UniqueFd fd(::memfd_create("log", MFD_CLOEXEC));
  ASSERT_EQ(::ftruncate(fd.get(), 4096 + 16), 0);
  DirtyLog log;
  EXPECT_NE(log.map(fd, 0, 0), "");
  EXPECT_NE(log.map(fd, 4096 + 32, 0), "");  // larger than its file
  ASSERT_EQ(log.map(fd, 16, 4096), "");      // 16 bytes: pages 0..127
  log.mark(0x1000, 1);                       // page 1
  log.mark(0x3fff, 2);                       // pages 3 and 4
  log.mark(127 * 0x1000, 0x10000);           // page 127, then past the log: ignored
  log.mark(~0ull - 10, 100);                 // wraps around: clamped, far beyond the log
  auto* bits = static_cast<std::uint8_t*>(::mmap(nullptr, 4096 + 16, PROT_READ, MAP_SHARED, fd.get(), 0));
  ASSERT_NE(bits, MAP_FAILED);
  EXPECT_EQ(bits[4096], 0b00011010);
  EXPECT_EQ(bits[4096 + 15], 0b10000000);
  for (int i = 1; i < 15; ++i) EXPECT_EQ(bits[4096 + i], 0) << i;
  ::munmap(bits, 4096 + 16);
}

}  // namespace
