// The dirty-page log of a vhost-user live migration (QEMU
// docs/interop/vhost-user.rst, "Migration"): a bitmap the front-end shares
// with us (SET_LOG_BASE with VHOST_USER_PROTOCOL_F_LOG_SHMFD), one bit per
// 4 KiB page of guest-physical memory. While the front-end asks for logging
// (VHOST_F_LOG_ALL), every page the back-end writes is marked, so QEMU
// copies it again; the used rings are logged at their own log_guest_addr.
//
// Invariant: mark() never touches memory outside the mapped bitmap; a page
// beyond the log's size is not marked (the front-end sizes the log to cover
// all of guest memory, so such a page does not exist).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "util/unique_fd.h"

namespace gondolin::vfs::vhost {

class DirtyLog {
 public:
  static constexpr std::uint64_t kPageBytes = 0x1000;
  // A log covering 1 TiB of guest RAM is 32 MiB; more is not a real log.
  static constexpr std::uint64_t kMaxLogBytes = 64ull << 20;

  DirtyLog() = default;
  DirtyLog(const DirtyLog&) = delete;
  DirtyLog& operator=(const DirtyLog&) = delete;
  ~DirtyLog() { unmap(); }

  // Maps `size` bytes of `fd` from `offset` as the bitmap (replacing any
  // earlier one). Returns an empty string, or why not (nothing mapped then).
  std::string map(const UniqueFd& fd, std::uint64_t size, std::uint64_t offset);
  void unmap();
  bool mapped() const { return bits_ != nullptr; }

  // Marks every page of guest-physical [gpa, gpa + len) dirty (atomically:
  // QEMU reads and clears the bitmap concurrently).
  void mark(std::uint64_t gpa, std::uint64_t len) const;

 private:
  std::uint8_t* bits_ = nullptr;
  std::uint64_t size_ = 0;
  void* mapping_ = nullptr;
  std::size_t mapping_len_ = 0;
};

}  // namespace gondolin::vfs::vhost
