// CRC-32C (util/crc32c.h): the standard check values, and the hardware and
// table paths agree at every length and split.
#include "util/crc32c.h"

#include <gtest/gtest.h>

#include <string>

using namespace gondolin;

namespace {

TEST(Crc32c, MatchesTheStandardCheckValues) {
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("123456789"), 0xe3069283u);            // the catalogue's check value
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8a9136aau);  // RFC 3720 B.4
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62a8ab43u);
  EXPECT_EQ(crc32c_hex(0xe3069283u), "e3069283");
  EXPECT_EQ(crc32c_hex(0x0000000fu), "0000000f");
}

TEST(Crc32c, BothPathsAgreeAtEveryLengthAndSplit) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 131 + 7));
  for (std::size_t n = 0; n <= data.size(); n += 7) {
    std::string_view part(data.data(), n);
    const std::uint32_t whole = crc32c(part);
    EXPECT_EQ(crc32c_extend_portable(0, part), whole) << n;
    for (std::size_t cut : {std::size_t{0}, n / 3, n}) {
      EXPECT_EQ(crc32c_extend(crc32c(part.substr(0, cut)), part.substr(cut)), whole) << n << "/" << cut;
    }
  }
}

}  // namespace
