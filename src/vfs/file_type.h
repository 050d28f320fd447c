// The file types a mount may show the guest: the seven of stat(2).
#pragma once

#include <sys/stat.h>

#include <cstdint>

namespace gondolin::vfs {

inline bool known_file_type(std::uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFDIR:
    case S_IFLNK:
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK: return true;
    default: return false;
  }
}

}  // namespace gondolin::vfs
