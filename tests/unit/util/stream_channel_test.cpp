// util/stream_channel: the shared read loop, write queue and fail-once rule,
// against a real socketpair whose far end the test reads and writes.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "../io_thread.h"
#include "util/stream_channel.h"

namespace gondolin {
namespace {

using namespace std::chrono_literals;

// Echoes every byte it reads back through append(), one byte at a time, and
// can hold its read loop back.
class EchoChannel final : public StreamChannel {
 public:
  using StreamChannel::append;
  using StreamChannel::report_failure;
  using StreamChannel::start_reading;
  using StreamChannel::StreamChannel;

  std::atomic<bool> paused{false};
  std::atomic<int> failures{0};
  std::atomic<int> read_errors{0};

 private:
  boost::asio::mutable_buffer read_space() override { return boost::asio::buffer(buf_); }
  void on_received(std::size_t n) override {
    for (std::size_t i = 0; i < n; ++i) append(&buf_[i], 1);
  }
  void on_read_error(const boost::system::error_code&) override { ++read_errors; }
  void on_write_error(const boost::system::error_code&) override {}
  void on_failure(const std::string&) override { ++failures; }
  bool reading_paused() const override { return paused; }

  std::array<std::uint8_t, 4096> buf_{};
};

struct Pair {
  int far = -1;
  std::shared_ptr<EchoChannel> channel;
};

Pair make_pair(boost::asio::io_context& io) {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  return Pair{sv[1], std::make_shared<EchoChannel>(io, UniqueFd(sv[0]))};
}

std::string read_exactly(int fd, std::size_t n) {
  std::string out;
  char buf[65536];
  while (out.size() < n) {
    ssize_t r = ::read(fd, buf, std::min(sizeof buf, n - out.size()));
    if (r <= 0) break;
    out.append(buf, static_cast<std::size_t>(r));
  }
  return out;
}

TEST(StreamChannel, SmallAppendsArriveWholeAndInOrder) {
  test_support::IoThread io;
  Pair p = make_pair(io.io());
  io.run([&] { p.channel->start_reading(); });
  std::string sent;
  for (int i = 0; i < 200000; ++i) sent.push_back(static_cast<char>('a' + i % 26));
  std::thread writer([&] { ASSERT_EQ(::write(p.far, sent.data(), sent.size()), static_cast<ssize_t>(sent.size())); });
  EXPECT_EQ(read_exactly(p.far, sent.size()), sent);
  writer.join();
  for (int i = 0; i < 100 && io.run([&] { return p.channel->queued_bytes(); }) != 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(io.run([&] { return p.channel->queued_bytes(); }), 0u);
  io.run([&] { p.channel->close(); });
  ::close(p.far);
}

TEST(StreamChannel, APausedLoopReadsNothingUntilResumed) {
  test_support::IoThread io;
  Pair p = make_pair(io.io());
  p.channel->paused = true;
  io.run([&] { p.channel->start_reading(); });
  ASSERT_EQ(::write(p.far, "xyz", 3), 3);
  std::this_thread::sleep_for(100ms);
  int unread = 0;
  ASSERT_EQ(::recv(p.far, &unread, sizeof unread, MSG_DONTWAIT), -1);  // nothing echoed
  p.channel->paused = false;
  io.run([&] { p.channel->start_reading(); });
  EXPECT_EQ(read_exactly(p.far, 3), "xyz");
  io.run([&] { p.channel->close(); });
  ::close(p.far);
}

TEST(StreamChannel, FailureIsReportedOnceAndCloseIsFinal) {
  test_support::IoThread io;
  Pair p = make_pair(io.io());
  io.run([&] {
    p.channel->start_reading();
    p.channel->report_failure("first");
    p.channel->report_failure("second");
  });
  EXPECT_EQ(p.channel->failures.load(), 1);
  io.run([&] {
    p.channel->close();
    p.channel->close();
    const std::uint8_t byte = 1;
    p.channel->append(&byte, 1);  // dropped: closed
    return 0;
  });
  EXPECT_TRUE(io.run([&] { return p.channel->closed(); }));
  EXPECT_EQ(io.run([&] { return p.channel->queued_bytes(); }), 0u);
  char c;
  EXPECT_EQ(::read(p.far, &c, 1), 0);           // the far end sees EOF, nothing was sent
  EXPECT_EQ(p.channel->read_errors.load(), 0);  // close() ends the loop quietly
  ::close(p.far);
}

}  // namespace
}  // namespace gondolin
