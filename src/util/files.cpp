#include "util/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "gondolin/error.h"
#include "util/unique_fd.h"

namespace gondolin {

std::optional<std::string> read_file_if_exists(const std::filesystem::path& path) {
  // One allocation of the file's size and reads as large as the kernel
  // gives (a snapshot's state is MiBs; a stream buffer read it 8 KiB at a
  // time into a string that kept doubling).
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || S_ISDIR(st.st_mode)) return std::nullopt;
  // One byte of room past the size: EOF shows without growing the string.
  std::string data(S_ISREG(st.st_mode) ? static_cast<std::size_t>(st.st_size) + 1 : 65536, '\0');
  std::size_t have = 0;
  for (;;) {
    if (have == data.size()) data.resize(2 * have);  // it grew, or had no size (/proc)
    const ssize_t n = ::read(fd.get(), data.data() + have, data.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
  }
  data.resize(have);
  return data;
}

std::string read_file(const std::filesystem::path& path) {
  auto data = read_file_if_exists(path);
  if (!data) throw Error(ErrorKind::Io, "cannot read " + path.string());
  return std::move(*data);
}

namespace {

// Writes all of `data` to `fd`; 0, or the errno of the write that failed.
int write_fully(int fd, std::string_view data) {
  for (std::size_t off = 0; off < data.size();) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? errno : EIO;
    off += static_cast<std::size_t>(n);
  }
  return 0;
}

}  // namespace

void write_file_atomic(const std::filesystem::path& path, std::string_view data, std::filesystem::perms perms,
                       Durability durability) {
  // One temporary name per process: two processes writing the same file
  // (two builds, two starts naming an image) never share one.
  std::filesystem::path tmp = path;
  tmp += "." + std::to_string(::getpid()) + ".tmp";
  // Created with its final mode (never wider, whatever the umask), then renamed over.
  ::unlink(tmp.c_str());
  const auto mode = static_cast<mode_t>(perms & std::filesystem::perms::mask);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) throw Error(ErrorKind::Io, "cannot write " + tmp.string() + ": " + std::strerror(errno));
  ::fchmod(fd.get(), mode);
  int err = write_fully(fd.get(), data);
  if (err == 0 && durability == Durability::Synced && ::fsync(fd.get()) != 0) err = errno;
  if (err != 0) {
    ::unlink(tmp.c_str());
    throw Error(ErrorKind::Io, "error writing " + tmp.string() + ": " + std::strerror(err));
  }
  fd.reset();
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    throw Error(ErrorKind::Io, "cannot rename " + tmp.string() + " to " + path.string() + ": " + ec.message());
  }
}

}  // namespace gondolin
