// The guest's FUSE forwarder on the host: a SOCK_SEQPACKET pair stands in for
// /dev/fuse (one read, one request), a stream pair for the mount's port.
#include <gtest/gtest.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "../../guest/fuse_forwarder.h"
#include "proto/mount_messages.h"

namespace gondolin::agent {
// The agent logs to /dev/kmsg; here, nowhere.
void klog(const char*, ...) {}
}  // namespace gondolin::agent

namespace {

std::vector<char> lookup_request(std::uint64_t unique) {
  fuse_in_header h{};
  h.len = sizeof h + 2;
  h.opcode = FUSE_LOOKUP;
  h.unique = unique;
  h.nodeid = 1;
  std::vector<char> out(h.len);
  std::memcpy(out.data(), &h, sizeof h);
  out[sizeof h] = 'x';
  return out;
}

std::optional<fuse_out_header> read_reply(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) return std::nullopt;
  fuse_out_header h{};
  if (::read(fd, &h, sizeof h) != static_cast<ssize_t>(sizeof h)) return std::nullopt;
  return h;
}

}  // namespace

// The host gives up on a mount (the guest broke its stream): the request it
// never answered and every later one get EIO from the forwarder, not a hang.
TEST(FuseForwarder, AfterTheHostsGoodbyeEveryRequestFailsWithEio) {
  int fuse[2], port[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fuse), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, port), 0);
  std::thread forwarder([&] { EXPECT_EQ(gondolin::agent::run_fuse_forwarder(fuse[1], port[1], 128 * 1024), 0); });

  auto first = lookup_request(7);
  ASSERT_EQ(::write(fuse[0], first.data(), first.size()), static_cast<ssize_t>(first.size()));
  std::vector<char> at_host(first.size());
  ASSERT_EQ(::read(port[0], at_host.data(), at_host.size()), static_cast<ssize_t>(first.size()));
  EXPECT_EQ(at_host, first);

  fuse_out_header goodbye{};
  goodbye.len = sizeof goodbye;
  goodbye.error = gondolin::proto::kFuseNotifyMountFailed;
  ASSERT_EQ(::write(port[0], &goodbye, sizeof goodbye), static_cast<ssize_t>(sizeof goodbye));
  auto r1 = read_reply(fuse[0]);
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->unique, 7u);
  EXPECT_EQ(r1->error, -EIO);

  auto second = lookup_request(9);
  ASSERT_EQ(::write(fuse[0], second.data(), second.size()), static_cast<ssize_t>(second.size()));
  auto r2 = read_reply(fuse[0]);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->unique, 9u);
  EXPECT_EQ(r2->error, -EIO);

  ::shutdown(fuse[0], SHUT_RDWR);  // "unmount"
  forwarder.join();
  for (int fd : {fuse[0], fuse[1], port[0]}) ::close(fd);
}
