#include "vm/ram_copy.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gondolin/error.h"

namespace gondolin::vm {
namespace {

Error io_error(const std::string& what, const std::filesystem::path& file) {
  return Error(ErrorKind::Io, "cannot copy boot template RAM " + file.string() + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

UniqueFd copy_ram_to_memfd(const std::filesystem::path& file) {
  UniqueFd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) throw io_error("open", file);
  struct stat st{};
  if (::fstat(in.get(), &st) != 0) throw io_error("stat", file);
  UniqueFd out(::memfd_create("gondolin-ram", MFD_CLOEXEC));
  if (!out) throw io_error("memfd_create", file);
  if (::ftruncate(out.get(), st.st_size) != 0) throw io_error("size the copy", file);
  // Data extents only: SEEK_DATA finds the next one, SEEK_HOLE its end.
  off_t pos = 0;
  while (pos < st.st_size) {
    off_t data = ::lseek(in.get(), pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;  // only a hole remains
      throw io_error("find data", file);
    }
    off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
    if (hole < 0) throw io_error("find a hole", file);
    off_t at = data;
    if (::lseek(out.get(), data, SEEK_SET) < 0) throw io_error("seek in the copy", file);
    while (at < hole) {
      ssize_t n = ::sendfile(out.get(), in.get(), &at, static_cast<std::size_t>(hole - at));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw io_error("copy", file);
    }
    pos = hole;
  }
  return out;
}

}  // namespace gondolin::vm
