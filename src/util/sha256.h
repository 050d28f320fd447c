#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace gondolin {

// A digest fed in pieces.
class Sha256 {
 public:
  Sha256();  // throws gondolin::Error (Internal) if OpenSSL cannot
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(std::string_view data);
  std::string hex();  // lowercase hex; the digest is finished after this

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string sha256_hex(std::string_view data);
// Throws gondolin::Error (Io) if the file cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);
// The same, remembered in `memo_dir` under the file's identity (device,
// inode, size, modification and change times): asking again about an
// unchanged file reads nothing. Any write to the file changes its change
// time, which no user tool can set back, so a stale answer needs a
// deliberately forged clock. Throws gondolin::Error (Io).
std::string sha256_file_hex_memo(const std::filesystem::path& path, const std::filesystem::path& memo_dir);

}  // namespace gondolin
