// RAM images (vm/ram_image.h): what a snapshot of a virtio-fs VM keeps of
// its RAM, and the digest a resume checks it against.
#include "vm/ram_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "gondolin/error.h"
#include "util/paths.h"
#include "util/sha256.h"

using namespace gondolin;
namespace fs = std::filesystem;

namespace {

constexpr off_t kPage = 4096;
constexpr off_t kRam = 64 * kPage;

void put(int fd, off_t at, const std::string& bytes) {
  ASSERT_EQ(::pwrite(fd, bytes.data(), bytes.size(), at), static_cast<ssize_t>(bytes.size()));
}

std::string get(const fs::path& file, off_t at, std::size_t n) {
  std::string out(n, '\0');
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_EQ(::pread(fd, out.data(), n, at), static_cast<ssize_t>(n));
  ::close(fd);
  return out;
}

struct Dir {
  fs::path path = paths::make_private_temp_dir("gondolin-ram-test");
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Guest RAM with data in pages 1, 2 and 40, and page 7 written but zero
// again (as a freed page the guest cleared): only the three are stored.
UniqueFd sample_ram() {
  UniqueFd ram = vm::new_ram_memfd(kRam);
  put(ram.get(), kPage + 10, "one");
  put(ram.get(), 2 * kPage, "two");
  put(ram.get(), 7 * kPage, std::string(kPage, '\0'));
  put(ram.get(), 41 * kPage - 1, "x");
  return ram;
}

TEST(RamImage, KeepsTheNonZeroPagesAtTheirOffsetsAndNothingElse) {
  Dir dir;
  UniqueFd ram = sample_ram();
  RamDigest digest = vm::save_ram_image(ram.get(), dir.path / "ram");
  EXPECT_EQ(digest.algorithm, "crc32c");
  EXPECT_EQ(digest.hex.size(), 8u) << digest.hex;
  EXPECT_EQ(fs::file_size(dir.path / "ram"), static_cast<std::uintmax_t>(kRam));
  struct stat st {};
  ASSERT_EQ(::stat((dir.path / "ram").c_str(), &st), 0);
  EXPECT_LE(st.st_blocks * 512, 3 * kPage) << "zero pages are holes";
  EXPECT_EQ(get(dir.path / "ram", kPage + 10, 3), "one");
  EXPECT_EQ(get(dir.path / "ram", 2 * kPage, 3), "two");
  EXPECT_EQ(get(dir.path / "ram", 41 * kPage - 1, 1), "x");
  EXPECT_EQ(vm::ram_image_digest(dir.path / "ram", "crc32c"), digest);

  // A resume's copy reads the same.
  UniqueFd copy = vm::copy_ram_to_memfd(dir.path / "ram");
  std::string back(3, '\0');
  ASSERT_EQ(::pread(copy.get(), back.data(), 3, 2 * kPage), 3);
  EXPECT_EQ(back, "two");
}

TEST(RamImage, TheDigestIgnoresHowZerosAreStoredButNotAByte) {
  Dir dir;
  UniqueFd ram = sample_ram();
  RamDigest digest = vm::save_ram_image(ram.get(), dir.path / "ram");
  // A copy that wrote every zero out (a non-sparse cp, a tar without -S).
  fs::copy_file(dir.path / "ram", dir.path / "dense");
  int fd = ::open((dir.path / "dense").c_str(), O_WRONLY | O_CLOEXEC);
  for (off_t at = 0; at < kRam; at += kPage)
    if (at != kPage && at != 2 * kPage && at != 40 * kPage) put(fd, at, std::string(kPage, '\0'));
  ::close(fd);
  EXPECT_EQ(vm::ram_image_digest(dir.path / "dense", "crc32c"), digest);
  // One byte moved, or one byte more, is another image.
  fs::copy_file(dir.path / "ram", dir.path / "changed");
  fd = ::open((dir.path / "changed").c_str(), O_WRONLY | O_CLOEXEC);
  put(fd, 2 * kPage, "twO");
  ::close(fd);
  EXPECT_NE(vm::ram_image_digest(dir.path / "changed", "crc32c"), digest);
  UniqueFd more = sample_ram();
  put(more.get(), 63 * kPage, "z");
  EXPECT_NE(vm::save_ram_image(more.get(), dir.path / "more"), digest);
}

// Snapshots from before CRC-32C carry a SHA-256 over the same bytes (each
// non-zero page's little-endian offset, then the page); they still check.
TEST(RamImage, OlderSha256DigestsStillCheck) {
  Dir dir;
  UniqueFd ram = sample_ram();
  vm::save_ram_image(ram.get(), dir.path / "ram");
  Sha256 expected;
  for (off_t page : {off_t{1}, off_t{2}, off_t{40}}) {
    std::uint64_t at = static_cast<std::uint64_t>(page * kPage);
    std::string le(8, '\0');
    for (int i = 0; i < 8; ++i) le[static_cast<std::size_t>(i)] = static_cast<char>(at >> (8 * i));
    expected.update(le);
    expected.update(get(dir.path / "ram", page * kPage, kPage));
  }
  EXPECT_EQ(vm::ram_image_digest(dir.path / "ram", "sha256"), (RamDigest{"sha256", expected.hex()}));
}

TEST(RamImage, ExistingOrUnreadableFilesAreErrors) {
  Dir dir;
  UniqueFd ram = sample_ram();
  vm::save_ram_image(ram.get(), dir.path / "ram");
  EXPECT_THROW(vm::save_ram_image(ram.get(), dir.path / "ram"), Error) << "never overwrites";
  EXPECT_THROW(vm::ram_image_digest(dir.path / "missing", "crc32c"), Error);
  EXPECT_THROW(vm::ram_image_digest(dir.path / "ram", "md5"), Error) << "an algorithm we do not know";
  EXPECT_THROW(vm::copy_ram_to_memfd(dir.path / "missing"), Error);
  fs::resize_file(dir.path / "ram", kRam - 100);
  EXPECT_THROW(vm::copy_ram_to_memfd(dir.path / "ram"), Error) << "RAM is whole pages";
}

}  // namespace
