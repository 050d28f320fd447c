// A file handed over as a pipe that already holds it: the reader gets every
// byte, then EOF, with nothing left to feed it; too big a file is refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "../vfs/temp_dir.h"
#include "gondolin/error.h"
#include "util/files.h"

using namespace gondolin;

TEST(PipeHoldingFile, HoldsTheWholeFileThenEof) {
  vfs::testing::TempDir tmp;
  std::string data;
  for (int i = 0; data.size() < 300000; ++i) data += std::to_string(i) + ",";
  std::ofstream(tmp.path() / "state", std::ios::binary) << data;
  UniqueFd fd = pipe_holding_file(tmp.path() / "state", 1u << 20);
  std::string got;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  EXPECT_EQ(got, data);

  EXPECT_THROW(pipe_holding_file(tmp.path() / "state", 1000), Error);
  EXPECT_THROW(pipe_holding_file(tmp.path() / "missing", 1000), Error);
}
