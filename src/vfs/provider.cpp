// Defaults for the optional parts of vfs::Provider: a provider that does not
// implement a change refuses it (EPERM); optional features report that they
// are missing in the way the guest kernel understands (ENOSYS, ENOTSUP).
#include <cerrno>

#include "gondolin/vfs.h"

namespace gondolin::vfs {

Result<Attr> Provider::setattr(const std::string&, const SetAttr&) { return Errno{EPERM}; }
Result<std::string> Provider::readlink(const std::string&) { return Errno{EINVAL}; }
Result<Attr> Provider::mknod(const std::string&, std::uint32_t, std::uint32_t, const Caller&) { return Errno{EPERM}; }
Result<Attr> Provider::mkdir(const std::string&, std::uint32_t, const Caller&) { return Errno{EPERM}; }
Result<Attr> Provider::symlink(const std::string&, const std::string&, const Caller&) { return Errno{EPERM}; }
Result<Attr> Provider::link(const std::string&, const std::string&) { return Errno{EPERM}; }
Status Provider::unlink(const std::string&) { return Errno{EPERM}; }
Status Provider::rmdir(const std::string&) { return Errno{EPERM}; }
Status Provider::rename(const std::string&, const std::string&, unsigned) { return Errno{EPERM}; }
Result<Handle> Provider::open(const std::string&, int) { return Errno{EACCES}; }
Result<Created> Provider::create(const std::string&, int, std::uint32_t, const Caller&) { return Errno{EPERM}; }
Result<std::size_t> Provider::read(Handle, std::uint64_t, std::span<char>) { return Errno{EBADF}; }
Result<std::size_t> Provider::write(Handle, std::uint64_t, std::span<const char>) { return Errno{EBADF}; }

namespace {
// Moves through `pieces` in order until one comes back short (end of file,
// a full disk) or fails; an error after some bytes is a short count.
template <typename Piece, typename Call>
Result<std::size_t> piece_by_piece(std::span<const Piece> pieces, std::uint64_t offset, Call call) {
  std::size_t done = 0;
  for (const auto& piece : pieces) {
    if (piece.empty()) continue;
    auto n = call(offset + done, piece);
    if (!n) {
      if (done > 0) break;
      return n;
    }
    done += *n;
    if (*n < piece.size()) break;
  }
  return done;
}
}  // namespace

Result<std::size_t> Provider::read_vectored(Handle handle, std::uint64_t offset,
                                            std::span<const std::span<char>> into) {
  return piece_by_piece(into, offset, [&](std::uint64_t at, std::span<char> piece) { return read(handle, at, piece); });
}
Result<std::size_t> Provider::write_vectored(Handle handle, std::uint64_t offset,
                                             std::span<const std::span<const char>> data) {
  return piece_by_piece(data, offset,
                        [&](std::uint64_t at, std::span<const char> piece) { return write(handle, at, piece); });
}
// ENOSYS: nothing to flush. The guest kernel then stops sending FLUSH for the
// mount, which saves a round trip per close().
Status Provider::flush(Handle) { return Errno{ENOSYS}; }
Status Provider::fsync(Handle, bool) { return {}; }
void Provider::release(Handle) {}
Result<Attr> Provider::fgetattr(Handle) { return Errno{ENOSYS}; }
Result<Attr> Provider::fsetattr(Handle, const SetAttr&) { return Errno{ENOSYS}; }
Status Provider::fallocate(Handle, int, std::uint64_t, std::uint64_t) { return Errno{ENOSYS}; }
Result<std::uint64_t> Provider::lseek(Handle, std::uint64_t, int) { return Errno{ENOSYS}; }
Result<Handle> Provider::opendir(const std::string&) { return Errno{ENOTDIR}; }
Status Provider::readdir(Handle, std::uint64_t, const std::function<bool(const DirEntry&)>&) { return Errno{EBADF}; }
void Provider::releasedir(Handle) {}
Result<StatFs> Provider::statfs() { return StatFs{}; }
Result<std::string> Provider::getxattr(const std::string&, const std::string&) { return Errno{ENOTSUP}; }
Result<std::vector<std::string>> Provider::listxattr(const std::string&) { return Errno{ENOTSUP}; }
Status Provider::setxattr(const std::string&, const std::string&, const std::string&, int) { return Errno{ENOTSUP}; }
Status Provider::removexattr(const std::string&, const std::string&) { return Errno{ENOTSUP}; }

}  // namespace gondolin::vfs
