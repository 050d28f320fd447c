#include "vfs/vhost/dirty_log.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace gondolin::vfs::vhost {

std::string DirtyLog::map(const UniqueFd& fd, std::uint64_t size, std::uint64_t offset) {
  unmap();
  if (!fd) return "the dirty log came without an fd";
  if (size == 0 || size > kMaxLogBytes || offset > kMaxLogBytes)
    return "the dirty log has an impossible size or offset";
  // Touching a mapping past the end of its file would kill us with SIGBUS.
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || st.st_size < 0 || static_cast<std::uint64_t>(st.st_size) < offset + size)
    return "the dirty log is larger than its file";
  const auto len = static_cast<std::size_t>(offset + size);
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return std::string("cannot map the dirty log: ") + std::strerror(errno);
  mapping_ = p;
  mapping_len_ = len;
  bits_ = static_cast<std::uint8_t*>(p) + offset;
  size_ = size;
  return "";
}

void DirtyLog::unmap() {
  if (mapping_) ::munmap(mapping_, mapping_len_);
  mapping_ = nullptr;
  mapping_len_ = 0;
  bits_ = nullptr;
  size_ = 0;
}

void DirtyLog::mark(std::uint64_t gpa, std::uint64_t len) const {
  if (!bits_ || len == 0) return;
  const std::uint64_t first = gpa / kPageBytes;
  const std::uint64_t end = gpa + len < gpa ? UINT64_MAX : gpa + len;  // no wrap-around
  const std::uint64_t last = (end - 1) / kPageBytes;
  for (std::uint64_t page = first; page <= last && page / 8 < size_; ++page)
    __atomic_fetch_or(bits_ + page / 8, static_cast<std::uint8_t>(1u << (page % 8)), __ATOMIC_RELAXED);
}

}  // namespace gondolin::vfs::vhost
