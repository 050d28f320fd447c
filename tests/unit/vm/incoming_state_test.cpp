// The state a QEMU loads: read whole and checked before QEMU sees a byte,
// then fed through a pipe by the io thread as the reader drains it, larger
// than any pipe holds; a reader that goes away ends the feeding, not us.
#include "vm/incoming_state.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "../io_thread.h"
#include "../vfs/temp_dir.h"
#include "gondolin/error.h"
#include "util/no_sigpipe.h"
#include "util/sha256.h"

using namespace gondolin;
using gondolin::test_support::IoThread;

namespace {

std::string numbers(std::size_t at_least) {
  std::string data;
  for (int i = 0; data.size() < at_least; ++i) data += std::to_string(i) + ",";
  return data;
}

std::string read_all(int fd) {
  std::string got;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  return got;
}

}  // namespace

TEST(IncomingState, AStreamLargerThanAPipeArrivesWholeThenEof) {
  vfs::testing::TempDir tmp;
  const std::string data = numbers(3u << 20);  // three times the largest pipe an unprivileged process gets
  std::ofstream(tmp.path() / "state", std::ios::binary) << data;
  auto state = vm::IncomingState::raw(tmp.path() / "state", 8u << 20, sha256_hex(data), "snapshot x");
  ASSERT_TRUE(state.raw_stream);
  IoThread io;
  io.run([] { block_sigpipe_in_this_thread(); });
  UniqueFd fd = io.run([&] { return vm::feed_through_pipe(io.io(), state.raw_stream); });
  EXPECT_EQ(read_all(fd.get()), data);
}

TEST(IncomingState, AReaderThatLeavesEndsTheFeeding) {
  IoThread io;
  io.run([] { block_sigpipe_in_this_thread(); });
  auto stream = std::make_shared<const std::string>(numbers(4u << 20));
  UniqueFd fd = io.run([&] { return vm::feed_through_pipe(io.io(), stream); });
  char buf[100];
  ASSERT_EQ(::read(fd.get(), buf, sizeof buf), 100);
  fd.reset();
  // The write failed with EPIPE and released its hold on the bytes.
  for (int i = 0; i < 200 && stream.use_count() > 1; ++i) ::usleep(5000);
  EXPECT_EQ(stream.use_count(), 1);
}

TEST(IncomingState, TooLargeDamagedOrMissingStatesAreRefusedByName) {
  vfs::testing::TempDir tmp;
  std::ofstream(tmp.path() / "state", std::ios::binary) << "QEVM....";
  auto message = [&](std::uint64_t max, const std::string& sha) {
    try {
      vm::IncomingState::raw(tmp.path() / "state", max, sha, "snapshot /s is damaged");
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(4, "").find("has 8 bytes, more than the 4"), std::string::npos) << message(4, "");
  EXPECT_EQ(message(100, std::string(64, '0')), "snapshot /s is damaged: the state's sha256 does not match");
  EXPECT_EQ(message(100, sha256_hex("QEVM....")), "no error");
  std::filesystem::remove(tmp.path() / "state");
  EXPECT_NE(message(100, "").find("cannot read state"), std::string::npos) << message(100, "");
}
