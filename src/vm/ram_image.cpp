#include "vm/ram_image.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "gondolin/error.h"
#include "util/crc32c.h"
#include "util/sha256.h"
#include "util/sparse_copy.h"

namespace gondolin::vm {
namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kBlock = std::size_t{1} << 20;

Error io_error(const std::string& what) { return Error(ErrorKind::Io, what + ": " + std::strerror(errno)); }

bool is_zero_page(const char* page) {
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i < kPage; i += sizeof acc) {
    std::uint64_t word;
    std::memcpy(&word, page + i, sizeof word);
    acc |= word;
  }
  return acc == 0;
}

bool pread_all(int fd, char* buf, std::size_t n, off_t at) {
  while (n > 0) {
    ssize_t r = ::pread(fd, buf, n, at);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO;  // shrank under us
      return false;
    }
    buf += r, n -= static_cast<std::size_t>(r), at += r;
  }
  return true;
}

// Calls visit(offset, bytes, length) for each run of non-zero pages in
// `fd`'s first `size` bytes, in order, reading only its data extents.
// Returns false with errno set if reading (or `visit`) fails.
template <typename Visit>
bool for_each_nonzero_run(int fd, off_t size, Visit&& visit) {
  std::vector<char> buf(kBlock);
  for (off_t pos = 0; pos < size;) {
    off_t data = ::lseek(fd, pos, SEEK_DATA);
    if (data < 0) return errno == ENXIO;  // the rest is a hole
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return false;
    // Extents are whole pages on every file system we use; be sure anyway.
    const off_t page = static_cast<off_t>(kPage);
    const off_t end = std::min<off_t>(size, (hole + page - 1) / page * page);
    for (off_t at = data - data % page; at < end;) {
      const std::size_t n = static_cast<std::size_t>(std::min<off_t>(static_cast<off_t>(kBlock), end - at));
      if (!pread_all(fd, buf.data(), n, at)) return false;
      std::size_t run = 0;  // start of the current run of non-zero pages
      for (std::size_t p = 0; p <= n; p += kPage) {
        const bool zero = p == n || is_zero_page(buf.data() + p);
        if (zero && p > run && !visit(at + static_cast<off_t>(run), buf.data() + run, p - run)) return false;
        if (zero) run = p + kPage;
      }
      at += static_cast<off_t>(n);
    }
    pos = end;
  }
  return true;
}

// The digest of an image's non-zero pages, each as its offset (8 bytes,
// little-endian) then its bytes, under one of kRamDigestAlgorithms.
class PageDigest {
 public:
  explicit PageDigest(std::string_view algorithm) : algorithm_(algorithm) {
    if (algorithm == "sha256")
      sha256_.emplace();
    else if (algorithm != "crc32c")
      throw Error(ErrorKind::Usage, "unknown RAM image digest \"" + std::string(algorithm.substr(0, 16)) + "\"");
  }
  void add(off_t offset, const char* bytes, std::size_t length) {
    for (std::size_t p = 0; p < length; p += kPage) {
      std::uint64_t at = static_cast<std::uint64_t>(offset) + p;
      char le[8];
      for (int i = 0; i < 8; ++i) le[i] = static_cast<char>(at >> (8 * i));
      update(std::string_view(le, sizeof le));
      update(std::string_view(bytes + p, kPage));
    }
  }
  RamDigest finish() { return {algorithm_, sha256_ ? sha256_->hex() : crc32c_hex(crc_)}; }

 private:
  void update(std::string_view data) {
    if (sha256_)
      sha256_->update(data);
    else
      crc_ = crc32c_extend(crc_, data);
  }
  std::string algorithm_;
  std::optional<Sha256> sha256_;
  std::uint32_t crc_ = 0;
};

off_t size_of(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return -1;
  if (st.st_size % static_cast<off_t>(kPage) != 0) {
    errno = EINVAL;  // RAM is whole pages
    return -1;
  }
  return st.st_size;
}

}  // namespace

UniqueFd new_ram_memfd(std::uint64_t bytes) {
  UniqueFd fd(::memfd_create("gondolin-ram", MFD_CLOEXEC));
  if (!fd) throw io_error("cannot create the guest's RAM (memfd_create)");
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) throw io_error("cannot size the guest's RAM");
  return fd;
}

UniqueFd copy_ram_to_memfd(const std::filesystem::path& file) {
  UniqueFd out = ram_memfd_sized_for(file);
  fill_ram_memfd(out.get(), file);
  return out;
}

namespace {

// The image to copy, opened, and its size (whole pages). Throws.
UniqueFd open_ram_image(const std::filesystem::path& file, off_t& size) {
  const std::string what = "cannot copy guest RAM " + file.string();
  UniqueFd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) throw io_error(what + ": open");
  size = size_of(in.get());
  if (size < 0) throw io_error(what + ": size");
  return in;
}

}  // namespace

UniqueFd ram_memfd_sized_for(const std::filesystem::path& file) {
  off_t size = 0;
  open_ram_image(file, size);
  return new_ram_memfd(static_cast<std::uint64_t>(size));
}

void fill_ram_memfd(int memfd, const std::filesystem::path& file) {
  const std::string what = "cannot copy guest RAM " + file.string();
  off_t size = 0;
  UniqueFd in = open_ram_image(file, size);
  // A description of its own: the copy may move a file position (sendfile),
  // which QEMU's inherited descriptor must not share.
  UniqueFd out(::open(("/proc/self/fd/" + std::to_string(memfd)).c_str(), O_WRONLY | O_CLOEXEC));
  if (!out) throw io_error(what + ": reopen");
  if (!copy_data_ranges(in.get(), out.get(), size)) throw io_error(what + ": copy");
}

RamDigest save_ram_image(int ram_fd, const std::filesystem::path& to) {
  const std::string what = "cannot save the guest's RAM to " + to.string();
  off_t size = size_of(ram_fd);
  if (size < 0) throw io_error(what + ": size");
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!out) throw io_error(what);
  PageDigest digest(kRamDigestAlgorithms[0].name);
  bool ok = ::ftruncate(out.get(), size) == 0 &&
            for_each_nonzero_run(ram_fd, size, [&](off_t at, const char* bytes, std::size_t n) {
              digest.add(at, bytes, n);
              for (std::size_t done = 0; done < n;) {
                ssize_t w = ::pwrite(out.get(), bytes + done, n - done, at + static_cast<off_t>(done));
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) return false;
                done += static_cast<std::size_t>(w);
              }
              return true;
            });
  if (!ok) {
    Error e = io_error(what);
    ::unlink(to.c_str());
    throw e;
  }
  return digest.finish();
}

RamDigest ram_image_digest(const std::filesystem::path& file, std::string_view algorithm) {
  PageDigest digest(algorithm);
  const std::string what = "cannot read guest RAM " + file.string();
  UniqueFd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) throw io_error(what);
  off_t size = size_of(in.get());
  if (size < 0) throw io_error(what);
  if (!for_each_nonzero_run(in.get(), size, [&](off_t at, const char* bytes, std::size_t n) {
        digest.add(at, bytes, n);
        return true;
      }))
    throw io_error(what);
  return digest.finish();
}

}  // namespace gondolin::vm
