#include "image/cpio_writer.h"

#include <sys/stat.h>

#include <cstdio>

#include "gondolin/error.h"

namespace gondolin {
namespace {

void pad4(std::string& s) {
  while (s.size() % 4) s.push_back('\0');
}

void hex8(std::string& s, std::uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08X", v);
  s.append(buf, 8);
}

}  // namespace

void CpioWriter::add_entry(std::string_view path, std::uint32_t mode, std::string_view data, std::uint32_t rdev_major,
                           std::uint32_t rdev_minor) {
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string_view::npos)
    throw Error(ErrorKind::Internal, "cpio: bad path '" + std::string(path) + "'");
  if (data.size() > 0xffffffffu) throw Error(ErrorKind::Internal, "cpio: file too large");
  out_ += "070701";
  hex8(out_, next_ino_++);
  hex8(out_, mode);
  hex8(out_, 0);  // uid
  hex8(out_, 0);  // gid
  hex8(out_, S_ISDIR(mode) ? 2 : 1);
  hex8(out_, 0);  // mtime: fixed, so identical inputs give identical archives
  hex8(out_, static_cast<std::uint32_t>(data.size()));
  hex8(out_, 0);
  hex8(out_, 0);
  hex8(out_, rdev_major);
  hex8(out_, rdev_minor);
  hex8(out_, static_cast<std::uint32_t>(path.size() + 1));
  hex8(out_, 0);  // check
  out_.append(path);
  out_.push_back('\0');
  pad4(out_);
  out_.append(data);
  pad4(out_);
}

void CpioWriter::add_directory(std::string_view path, std::uint32_t mode) { add_entry(path, S_IFDIR | mode, {}); }

void CpioWriter::add_file(std::string_view path, std::string_view data, std::uint32_t mode) {
  add_entry(path, S_IFREG | mode, data);
}

void CpioWriter::add_symlink(std::string_view path, std::string_view target) {
  add_entry(path, S_IFLNK | 0777, target);
}

void CpioWriter::add_char_device(std::string_view path, std::uint32_t major, std::uint32_t minor, std::uint32_t mode) {
  add_entry(path, S_IFCHR | mode, {}, major, minor);
}

std::string CpioWriter::finish() {
  add_entry("TRAILER!!!", 0, {});
  return std::move(out_);
}

}  // namespace gondolin
