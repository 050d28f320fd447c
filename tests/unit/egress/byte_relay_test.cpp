// ByteRelay (mapped TCP and ingress): bytes both ways, half-close passed on
// while the other direction keeps going, totals, and back-pressure: a side
// that stops reading stops the relay reading the other side.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>

#include <atomic>
#include <future>
#include <string>

#include "../io_thread.h"
#include "egress/tcp/byte_relay.h"
#include "util/unique_fd.h"

using namespace gondolin;
using egress::ByteRelay;

namespace {

struct Pair {
  UniqueFd test_end, relay_end;
};

Pair socket_pair() {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  int small = 16 * 1024;  // keeps the kernel's share of buffering small and known
  for (int fd : sv) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

std::unique_ptr<egress::ByteStream> stream(boost::asio::io_context& io, UniqueFd fd) {
  egress::GuestSocket s(io);
  s.assign(boost::asio::local::stream_protocol(), fd.release());
  return egress::make_plain_stream(std::move(s));
}

void write_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    ASSERT_GT(n, 0);
    off += static_cast<std::size_t>(n);
  }
}

std::string read_to_eof(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace

TEST(ByteRelay, HalfCloseIsPassedOnAndTheAnswerStillFlows) {
  test_support::IoThread io;
  Pair a = socket_pair(), b = socket_pair();
  std::promise<ByteRelay::Totals> done;
  io.run([&] {
    ByteRelay::start(stream(io.io(), std::move(a.relay_end)), stream(io.io(), std::move(b.relay_end)),
                     "first:", [&](const ByteRelay::Totals& t) { done.set_value(t); });
    return 0;
  });
  // The client (a) sends its request and half-closes, as `nc -N` does.
  write_all(a.test_end.get(), "request");
  ::shutdown(a.test_end.get(), SHUT_WR);
  EXPECT_EQ(read_to_eof(b.test_end.get()), "first:request");  // EOF arrived as a FIN
  // The server (b) answers after seeing the end of the request.
  // Bigger than every buffer on the way: read while writing.
  const std::string answer(200 * 1024, 'x');
  auto received = std::async(std::launch::async, [&] { return read_to_eof(a.test_end.get()); });
  write_all(b.test_end.get(), answer);
  ::shutdown(b.test_end.get(), SHUT_WR);
  EXPECT_EQ(received.get(), answer);
  auto t = done.get_future().get();
  EXPECT_EQ(t.a_to_b, std::string("first:request").size());
  EXPECT_EQ(t.b_to_a, answer.size());
  EXPECT_EQ(t.error, "");
}

TEST(ByteRelay, AReaderThatStopsStopsTheWriter) {
  test_support::IoThread io;
  Pair a = socket_pair(), b = socket_pair();
  std::promise<ByteRelay::Totals> done;
  io.run([&] {
    ByteRelay::start(stream(io.io(), std::move(a.relay_end)), stream(io.io(), std::move(b.relay_end)), "",
                     [&](const ByteRelay::Totals& t) { done.set_value(t); });
    return 0;
  });
  // b never reads: a's writes must block once the relay's one buffer and
  // the kernel's socket buffers are full, far below what a sends.
  ::fcntl(a.test_end.get(), F_SETFL, O_NONBLOCK);
  const std::string chunk(4096, 'y');
  std::size_t accepted = 0;
  for (int stalls = 0; stalls < 50 && accepted < 64 * 1024 * 1024;) {
    ssize_t n = ::write(a.test_end.get(), chunk.data(), chunk.size());
    if (n > 0) {
      accepted += static_cast<std::size_t>(n);
      stalls = 0;
    } else {
      ++stalls;
      ::usleep(10000);
    }
  }
  EXPECT_LT(accepted, 2 * 1024 * 1024u) << "the relay kept reading from a side whose peer does not read";
  // Closing everything ends the relay with its totals.
  a.test_end.reset();
  b.test_end.reset();
  auto t = done.get_future().get();
  EXPECT_LE(t.a_to_b, accepted);
}

TEST(ByteRelay, WritingToAGoneSideEndsTheRelayWithAnError) {
  test_support::IoThread io;
  Pair a = socket_pair(), b = socket_pair();
  std::promise<ByteRelay::Totals> done;
  io.run([&] {
    ByteRelay::start(stream(io.io(), std::move(a.relay_end)), stream(io.io(), std::move(b.relay_end)), "",
                     [&](const ByteRelay::Totals& t) { done.set_value(t); });
    return 0;
  });
  b.test_end.reset();  // the server goes away entirely
  char c;
  EXPECT_EQ(::read(a.test_end.get(), &c, 1), 0);  // its FIN reached the client
  write_all(a.test_end.get(), "late");            // which still talks
  auto t = done.get_future().get();
  EXPECT_NE(t.error, "");
  EXPECT_EQ(read_to_eof(a.test_end.get()), "");  // and is closed too
}

TEST(ByteRelay, IdleTimeoutClosesBothSidesAndZeroMeansNever) {
  using namespace std::chrono_literals;
  test_support::IoThread io;
  Pair a = socket_pair(), b = socket_pair(), c = socket_pair(), d = socket_pair();
  std::promise<ByteRelay::Totals> done, never_done;
  io.run([&] {
    ByteRelay::start(
        stream(io.io(), std::move(a.relay_end)), stream(io.io(), std::move(b.relay_end)), "",
        [&](const ByteRelay::Totals& t) { done.set_value(t); }, ByteRelay::IdleTimeout{io.io().get_executor(), 100ms});
    ByteRelay::start(
        stream(io.io(), std::move(c.relay_end)), stream(io.io(), std::move(d.relay_end)), "",
        [&](const ByteRelay::Totals& t) { never_done.set_value(t); },
        ByteRelay::IdleTimeout{io.io().get_executor(), 0ms});
    return 0;
  });
  auto t = done.get_future().get();
  EXPECT_TRUE(t.idle);
  EXPECT_EQ(t.error, "idle timeout: no bytes either way for 100 ms");
  EXPECT_EQ(read_to_eof(a.test_end.get()), "");
  EXPECT_EQ(read_to_eof(b.test_end.get()), "");
  // The relay without a timeout is still there after the other one's.
  write_all(c.test_end.get(), "late");
  char buf[4];
  EXPECT_EQ(::read(d.test_end.get(), buf, sizeof buf), 4);
  c.test_end.reset();
  d.test_end.reset();
  EXPECT_FALSE(never_done.get_future().get().idle);
}
