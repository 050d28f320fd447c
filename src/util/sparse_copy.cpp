#include "util/sparse_copy.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gondolin/error.h"
#include "util/unique_fd.h"

namespace gondolin {
namespace {

// Copies [offset, offset + length) with copy_file_range (in-kernel, no
// round trip through our memory), or sendfile across file systems (EXDEV).
// Returns false with errno set.
bool copy_range(int in, int out, off_t offset, off_t length) {
  off_t in_off = offset, out_off = offset;
  bool same_fs = true;
  while (length > 0) {
    ssize_t n = same_fs ? ::copy_file_range(in, &in_off, out, &out_off, static_cast<std::size_t>(length), 0)
                        : ::sendfile(out, in, &in_off, static_cast<std::size_t>(length));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EXDEV && same_fs) {
      same_fs = false;  // sendfile writes at out's file position
      if (::lseek(out, out_off, SEEK_SET) < 0) return false;
      continue;
    }
    if (n <= 0) {
      if (n == 0) errno = EIO;  // the source shrank under us
      return false;
    }
    length -= n;
  }
  return true;
}

}  // namespace

bool copy_data_ranges(int in, int out, off_t size) {
  off_t pos = 0;
  while (pos < size) {
    off_t data = ::lseek(in, pos, SEEK_DATA);
    if (data < 0) return errno == ENXIO;  // no data after pos: the rest is a hole
    off_t hole = ::lseek(in, data, SEEK_HOLE);
    if (hole < 0) return false;
    if (!copy_range(in, out, data, hole - data)) return false;
    pos = hole;
  }
  return true;
}

bool copy_sparse_file(const std::filesystem::path& from, const std::filesystem::path& to, unsigned mode) {
  auto fail = [&](const std::string& what) {
    int err = errno;
    ::unlink(to.c_str());
    return Error(ErrorKind::Io,
                 "cannot copy " + from.string() + " to " + to.string() + ": " + what + ": " + std::strerror(err));
  };
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) throw Error(ErrorKind::Io, "cannot open " + from.string() + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw Error(ErrorKind::Io, from.string() + " is not a regular file");
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!out) throw Error(ErrorKind::Io, "cannot create " + to.string() + ": " + std::strerror(errno));
  if (::ioctl(out.get(), FICLONE, in.get()) == 0) return true;
  if (::ftruncate(out.get(), st.st_size) != 0) throw fail("truncate");
  if (!copy_data_ranges(in.get(), out.get(), st.st_size)) throw fail("copy");
  return false;
}

}  // namespace gondolin
