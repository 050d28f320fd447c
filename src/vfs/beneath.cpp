#include "vfs/beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace gondolin::vfs {
namespace {

std::atomic<bool> have_openat2{true};

int sys_openat2(int dir, const char* path, int flags, unsigned mode, std::uint64_t resolve) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(static_cast<unsigned>(flags));
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
  how.resolve = resolve;
  return static_cast<int>(::syscall(SYS_openat2, dir, path, &how, sizeof how));
}

// The fallback walk: every intermediate component is opened O_PATH |
// O_NOFOLLOW | O_DIRECTORY relative to the previous one. Components are
// never "." or ".." (the server checks names), so this cannot climb out.
Result<UniqueFd> walk_beneath(int root, std::string_view rel, int flags, unsigned mode) {
  UniqueFd current(::fcntl(root, F_DUPFD_CLOEXEC, 0));
  if (!current) return Errno{errno};
  while (true) {
    auto slash = rel.find('/');
    std::string part(rel.substr(0, slash));
    if (part.empty() || part == "." || part == "..") return Errno{EINVAL};
    if (slash == std::string_view::npos) {
      int fd = ::openat(current.get(), part.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
      if (fd < 0) return Errno{errno};
      return UniqueFd(fd);
    }
    int fd = ::openat(current.get(), part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Errno{errno == ENOTDIR ? ENOTDIR : errno};
    current.reset(fd);
    rel.remove_prefix(slash + 1);
  }
}

// The FUSE server only ever builds paths of plain names; anything else
// (absolute, "..", ".", empty components) is refused here as well, because a
// provider must not depend on its caller for its confinement.
bool plain_relative(std::string_view rel) {
  std::size_t pos = 0;
  while (true) {
    std::size_t end = rel.find('/', pos);
    std::string_view part = rel.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    if (part.empty() || part == "." || part == ".." || part.find('\0') != std::string_view::npos) return false;
    if (end == std::string_view::npos) return true;
    pos = end + 1;
  }
}

}  // namespace

Result<UniqueFd> open_beneath(int root, std::string_view rel, int flags, unsigned mode) {
  if (!rel.empty() && !plain_relative(rel)) return Errno{EINVAL};
  if (rel.empty()) {
    // The root itself: re-open it with the wanted flags.
    if (flags & O_PATH) {
      int fd = ::fcntl(root, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return Errno{errno};
      return UniqueFd(fd);
    }
    int fd = ::openat(root, ".", (flags & ~O_CREAT) | O_CLOEXEC);
    if (fd < 0) return Errno{errno};
    return UniqueFd(fd);
  }
  if (have_openat2.load(std::memory_order_relaxed)) {
    std::string path(rel);
    int fd = sys_openat2(root, path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode,
                         RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    if (fd >= 0) return UniqueFd(fd);
    if (errno != ENOSYS) return Errno{errno == EXDEV ? EACCES : errno};
    have_openat2.store(false, std::memory_order_relaxed);
  }
  return walk_beneath(root, rel, flags, mode);
}

Result<ParentAndName> open_parent(int root, std::string_view rel) {
  if (rel.empty()) return Errno{EBUSY};
  if (!plain_relative(rel)) return Errno{EINVAL};
  auto slash = rel.rfind('/');
  std::string_view dir = slash == std::string_view::npos ? std::string_view() : rel.substr(0, slash);
  std::string_view name = slash == std::string_view::npos ? rel : rel.substr(slash + 1);
  if (name.empty()) return Errno{EINVAL};
  auto fd = open_beneath(root, dir, O_PATH | O_DIRECTORY);
  if (!fd) return Errno{fd.error()};
  return ParentAndName{std::move(*fd), std::string(name)};
}

std::string proc_fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

}  // namespace gondolin::vfs
