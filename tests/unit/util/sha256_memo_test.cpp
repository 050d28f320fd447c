// sha256_file_hex_memo: an OCI archive is hashed once per content, not once
// per build, and never answered from a memo after it changed.
#include <gtest/gtest.h>

#include <fstream>

#include "util/paths.h"
#include "util/sha256.h"

using namespace gondolin;
namespace fs = std::filesystem;

namespace {

std::size_t entries(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST(Sha256Memo, RemembersAnUnchangedFileAndNoticesAChangedOne) {
  fs::path dir = paths::make_private_temp_dir("gondolin-sha-memo");
  fs::path file = dir / "image.tar", memo = dir / "memo";
  std::ofstream(file) << "layer one";
  EXPECT_EQ(sha256_file_hex_memo(file, memo), sha256_hex("layer one"));
  EXPECT_EQ(entries(memo), 1u);
  // The memo is the work directory's, trusted like its cached roots: what
  // it says about the unchanged file is the answer (nothing was read).
  for (const auto& e : fs::directory_iterator(memo)) std::ofstream(e.path(), std::ios::trunc) << sha256_hex("memo");
  EXPECT_EQ(sha256_file_hex_memo(file, memo), sha256_hex("memo"));
  EXPECT_EQ(entries(memo), 1u);

  // Same size, mtime set back: the change time still tells.
  auto mtime = fs::last_write_time(file);
  std::ofstream(file, std::ios::trunc) << "layer two";
  fs::last_write_time(file, mtime);
  EXPECT_EQ(sha256_file_hex_memo(file, memo), sha256_hex("layer two"));

  // A forged memo entry (not a digest) is ignored, not trusted.
  for (const auto& e : fs::directory_iterator(memo)) std::ofstream(e.path(), std::ios::trunc) << std::string(64, 'z');
  EXPECT_EQ(sha256_file_hex_memo(file, memo), sha256_hex("layer two"));
  EXPECT_THROW(sha256_file_hex_memo(dir / "missing.tar", memo), std::exception);
  fs::remove_all(dir);
}

}  // namespace
