// Writes "newc" cpio archives, the format the kernel unpacks as initramfs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gondolin {

class CpioWriter {
 public:
  void add_directory(std::string_view path, std::uint32_t mode = 0755);
  void add_file(std::string_view path, std::string_view data, std::uint32_t mode = 0644);
  void add_symlink(std::string_view path, std::string_view target);
  void add_char_device(std::string_view path, std::uint32_t major, std::uint32_t minor, std::uint32_t mode = 0600);
  // Appends the trailer and returns the archive; the writer is spent afterwards.
  std::string finish();

 private:
  void add_entry(std::string_view path, std::uint32_t mode, std::string_view data, std::uint32_t rdev_major = 0,
                 std::uint32_t rdev_minor = 0);
  std::string out_;
  std::uint32_t next_ino_ = 1;
};

}  // namespace gondolin
