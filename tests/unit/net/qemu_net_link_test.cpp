// The link to QEMU: length-prefixed frames in any chunking, oversized frames
// skipped, the outgoing queue bounded.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include "net/qemu_net_link.h"

using namespace gondolin;
using namespace gondolin::net;

namespace {

std::vector<std::uint8_t> framed(std::size_t len, std::uint8_t fill) {
  std::vector<std::uint8_t> out{static_cast<std::uint8_t>(len >> 24), static_cast<std::uint8_t>(len >> 16),
                                static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len)};
  out.insert(out.end(), len, fill);
  return out;
}

struct LinkFixture {
  boost::asio::io_context io;
  UniqueFd peer;
  std::shared_ptr<QemuNetLink> link;
  std::vector<std::vector<std::uint8_t>> received;
  LinkFixture() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    peer.reset(sv[1]);
    link = std::make_shared<QemuNetLink>(io, UniqueFd(sv[0]));
    link->start([this](Bytes f) { received.emplace_back(f.begin(), f.end()); }, nullptr, nullptr);
  }
  void write_peer(const std::vector<std::uint8_t>& bytes, std::size_t chunk) {
    for (std::size_t off = 0; off < bytes.size(); off += chunk) {
      std::size_t n = std::min(chunk, bytes.size() - off);
      ASSERT_EQ(::write(peer.get(), bytes.data() + off, n), static_cast<ssize_t>(n));
      while (io.poll() > 0) {}
    }
    io.run_for(std::chrono::milliseconds(5));
  }
};

}  // namespace

TEST(NetQemuLink, ReassemblesFramesAcrossAnyChunking) {
  for (std::size_t chunk : {1u, 3u, 7u, 1500u, 100000u}) {
    LinkFixture f;
    std::vector<std::uint8_t> stream;
    for (std::size_t len : {60u, 1514u, 16398u, 14u}) {
      auto fr = framed(len, static_cast<std::uint8_t>(len));
      stream.insert(stream.end(), fr.begin(), fr.end());
    }
    f.write_peer(stream, chunk);
    ASSERT_EQ(f.received.size(), 4u) << "chunk " << chunk;
    EXPECT_EQ(f.received[1].size(), 1514u);
    EXPECT_EQ(f.received[2].size(), 16398u);
    EXPECT_EQ(f.received[2].back(), static_cast<std::uint8_t>(16398));
  }
}

TEST(NetQemuLink, SkipsOversizedFramesWithoutLosingSync) {
  for (std::size_t chunk : {5u, 4096u, 200000u}) {
    LinkFixture f;
    std::vector<std::uint8_t> stream = framed(100, 1);
    auto big = framed(QemuNetLink::kMaxFrame + 1, 2);
    stream.insert(stream.end(), big.begin(), big.end());
    auto after = framed(42, 3);
    stream.insert(stream.end(), after.begin(), after.end());
    f.write_peer(stream, chunk);
    ASSERT_EQ(f.received.size(), 2u) << "chunk " << chunk;
    EXPECT_EQ(f.received[1].size(), 42u);
    EXPECT_EQ(f.link->frames_oversized(), 1u);
  }
}

TEST(NetQemuLink, SendsLengthPrefixedAndDropsBeyondTheQueueBound) {
  LinkFixture f;
  std::vector<std::uint8_t> frame(16000, 0xab);
  std::size_t accepted = 0;
  // Nobody reads the peer: the kernel buffer fills, then our queue, then drops.
  for (int i = 0; i < 1000; ++i) accepted += f.link->send(frame) ? 1u : 0u;
  EXPECT_LT(accepted, 1000u);
  EXPECT_GT(f.link->frames_dropped(), 0u);
  EXPECT_TRUE(f.link->congested());
  f.io.run_for(std::chrono::milliseconds(5));
  std::uint8_t head[4];
  ASSERT_EQ(::read(f.peer.get(), head, 4), 4);
  EXPECT_EQ(load_u32(head), 16000u);
}
