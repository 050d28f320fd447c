// vfs::host_dir: a host directory, read-write, confined to its root.
//
// Every operation resolves its path with open_beneath/open_parent (no symlink
// ever followed, no way above the root) and then acts through *at() calls on
// the parent descriptor with AT_SYMLINK_NOFOLLOW, or through an O_PATH
// descriptor of the exact inode ("/proc/self/fd/N"). Only regular files are
// ever opened for I/O, so a FIFO or device node on the host cannot block or
// poke anything.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "gondolin/error.h"
#include "vfs/beneath.h"

namespace gondolin::vfs {
namespace {

constexpr std::uint32_t kNobody = 65534;
constexpr std::string_view kUserXattrPrefix = "user.";
constexpr std::size_t kDirBufferSize = 32 * 1024;

Timespec to_timespec(const struct timespec& t) {
  return Timespec{static_cast<std::int64_t>(t.tv_sec), static_cast<std::uint32_t>(t.tv_nsec)};
}

struct timespec to_host_time(const std::optional<TimeChange>& t) {
  struct timespec out {};
  if (!t)
    out.tv_nsec = UTIME_OMIT;
  else if (t->now)
    out.tv_nsec = UTIME_NOW;
  else {
    out.tv_sec = static_cast<time_t>(t->time.sec);
    out.tv_nsec = static_cast<long>(t->time.nsec);
  }
  return out;
}

// The guest may not create set-id programs or directories on the host: a
// setuid file made by a root-run gondolin would be a privilege escalation for
// anyone on the host, and a setgid directory hands its group to whatever host
// users create below it. (A directory made inside a setgid host directory
// still inherits the bit from its parent, as on the host itself.)
std::uint32_t safe_mode(std::uint32_t mode) { return mode & ~static_cast<std::uint32_t>(S_ISUID | S_ISGID) & 07777; }

// getdents64 records: this header, then the NUL-terminated name at byte 19.
struct DirentHeader {
  std::uint64_t d_ino;
  std::int64_t d_off;
  std::uint16_t d_reclen;
  std::uint8_t d_type;
};
constexpr std::size_t kDirentNameOffset = 19;

class HostDir final : public Provider {
 public:
  HostDir(UniqueFd root, std::filesystem::path root_path, HostDirOptions options)
      : root_(std::move(root)),
        root_path_(std::move(root_path)),
        options_(options),
        host_uid_(::geteuid()),
        host_gid_(::getegid()) {
    struct stat st {};
    ::fstat(root_.get(), &st);
    root_dev_ = st.st_dev;
  }

  Result<Attr> getattr(const std::string& path) override {
    if (path.empty()) return fstat_attr(root_.get());
    auto p = open_parent(root_.get(), path);
    if (!p) return Errno{p.error()};
    struct stat st {};
    if (::fstatat(p->dir.get(), p->name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Errno{errno};
    return to_attr(st);
  }

  Result<Attr> setattr(const std::string& path, const SetAttr& c) override {
    auto fd = open_beneath(root_.get(), path, O_PATH);
    if (!fd) return Errno{fd.error()};
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return Errno{errno};
    const bool symlink = S_ISLNK(st.st_mode);
    const std::string proc = proc_fd_path(fd->get());
    if (c.uid || c.gid) {
      auto ids = host_owner(st, c);
      if (!ids) return Errno{ids.error()};
      if (::fchownat(fd->get(), "", ids->first, ids->second, AT_EMPTY_PATH) != 0) return Errno{errno};
    }
    if (c.mode) {
      if (symlink) return Errno{EOPNOTSUPP};
      if (::chmod(proc.c_str(), safe_mode(*c.mode)) != 0) return Errno{errno};
    }
    if (c.size) {
      if (S_ISDIR(st.st_mode)) return Errno{EISDIR};
      if (!S_ISREG(st.st_mode)) return Errno{EINVAL};
      if (::truncate(proc.c_str(), static_cast<off_t>(*c.size)) != 0) return Errno{errno};
    }
    if (c.atime || c.mtime) {
      struct timespec times[2] = {to_host_time(c.atime), to_host_time(c.mtime)};
      if (symlink) {
        auto p = open_parent(root_.get(), path);
        if (!p) return Errno{p.error()};
        if (::utimensat(p->dir.get(), p->name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) return Errno{errno};
      } else if (::utimensat(AT_FDCWD, proc.c_str(), times, 0) != 0) {
        return Errno{errno};
      }
    }
    return fstat_attr(fd->get());
  }

  Result<Attr> fsetattr(Handle h, const SetAttr& c) override {
    int fd = file_fd(h);
    if (fd < 0) return Errno{EBADF};
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Errno{errno};
    if (c.uid || c.gid) {
      auto ids = host_owner(st, c);
      if (!ids) return Errno{ids.error()};
      if (::fchown(fd, ids->first, ids->second) != 0) return Errno{errno};
    }
    if (c.mode && ::fchmod(fd, safe_mode(*c.mode)) != 0) return Errno{errno};
    if (c.size && ::ftruncate(fd, static_cast<off_t>(*c.size)) != 0) return Errno{errno};
    if (c.atime || c.mtime) {
      struct timespec times[2] = {to_host_time(c.atime), to_host_time(c.mtime)};
      if (::futimens(fd, times) != 0) return Errno{errno};
    }
    return fstat_attr(fd);
  }

  Result<std::string> readlink(const std::string& path) override {
    auto p = open_parent(root_.get(), path);
    if (!p) return Errno{p.error()};
    char buf[4096];
    ssize_t n = ::readlinkat(p->dir.get(), p->name.c_str(), buf, sizeof buf);
    if (n < 0) return Errno{errno};
    if (static_cast<std::size_t>(n) >= sizeof buf) return Errno{ENAMETOOLONG};
    return std::string(buf, static_cast<std::size_t>(n));
  }

  Result<Attr> mknod(const std::string& path, std::uint32_t mode, std::uint32_t rdev, const Caller&) override {
    std::uint32_t type = mode & S_IFMT;
    // No device nodes, and no FIFOs: a FIFO left in a host directory hangs
    // the next host program that opens it (cat, an editor, a backup). A
    // socket node is inert on the host (connect: ECONNREFUSED, open: ENXIO)
    // while the guest's own bind() on it keeps working, so it is allowed.
    if (type != S_IFSOCK && type != S_IFREG) return Errno{EPERM};
    auto p = open_parent(root_.get(), path);
    if (!p) return Errno{p.error()};
    (void)rdev;
    if (::mknodat(p->dir.get(), p->name.c_str(), type | safe_mode(mode), 0) != 0) return Errno{errno};
    return stat_at(*p);
  }

  Result<Attr> mkdir(const std::string& path, std::uint32_t mode, const Caller&) override {
    auto p = open_parent(root_.get(), path);
    if (!p) return Errno{p.error()};
    if (::mkdirat(p->dir.get(), p->name.c_str(), safe_mode(mode)) != 0) return Errno{errno};
    return stat_at(*p);
  }

  Result<Attr> symlink(const std::string& target, const std::string& path, const Caller&) override {
    auto p = open_parent(root_.get(), path);
    if (!p) return Errno{p.error()};
    // The target is stored verbatim and never followed by us.
    if (::symlinkat(target.c_str(), p->dir.get(), p->name.c_str()) != 0) return Errno{errno};
    return stat_at(*p);
  }

  Result<Attr> link(const std::string& existing, const std::string& new_path) override {
    auto from = open_parent(root_.get(), existing);
    if (!from) return Errno{from.error()};
    auto to = open_parent(root_.get(), new_path);
    if (!to) return Errno{to.error()};
    // Flags 0: a symlink is linked itself, never followed.
    if (::linkat(from->dir.get(), from->name.c_str(), to->dir.get(), to->name.c_str(), 0) != 0) return Errno{errno};
    return stat_at(*to);
  }

  Status unlink(const std::string& path) override { return unlink_at(path, 0); }
  Status rmdir(const std::string& path) override { return unlink_at(path, AT_REMOVEDIR); }

  Status rename(const std::string& from, const std::string& to, unsigned flags) override {
    auto a = open_parent(root_.get(), from);
    if (!a) return Errno{a.error()};
    auto b = open_parent(root_.get(), to);
    if (!b) return Errno{b.error()};
    if (::renameat2(a->dir.get(), a->name.c_str(), b->dir.get(), b->name.c_str(), flags) != 0) return Errno{errno};
    return {};
  }

  Result<Handle> open(const std::string& path, int flags) override {
    auto pinned = open_beneath(root_.get(), path, O_PATH);
    if (!pinned) return Errno{pinned.error()};
    struct stat st {};
    if (::fstat(pinned->get(), &st) != 0) return Errno{errno};
    if (S_ISDIR(st.st_mode)) return Errno{EISDIR};
    if (!S_ISREG(st.st_mode)) return Errno{EACCES};
    // Re-open the very inode we checked (not the name, which may have changed).
    int fd = ::open(proc_fd_path(pinned->get()).c_str(), flags | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return Errno{errno};
    return add_file(UniqueFd(fd));
  }

  Result<Created> create(const std::string& path, int flags, std::uint32_t mode, const Caller&) override {
    auto p = open_parent(root_.get(), path);
    if (!p) return Errno{p.error()};
    // O_EXCL: we only ever create a new regular file, never open whatever
    // (FIFO, symlink) might have appeared under that name.
    int fd = ::openat(p->dir.get(), p->name.c_str(),
                      (flags & ~O_TRUNC) | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, safe_mode(mode));
    if (fd < 0) return Errno{errno};
    UniqueFd owned(fd);
    auto attr = fstat_attr(fd);
    if (!attr) return Errno{attr.error()};
    return Created{add_file(std::move(owned)), *attr};
  }

  Result<std::size_t> read(Handle h, std::uint64_t offset, std::span<char> into) override {
    return transfer_vectored(h, offset, {{into.data(), into.size()}}, ::preadv);
  }

  Result<std::size_t> write(Handle h, std::uint64_t offset, std::span<const char> data) override {
    return transfer_vectored(h, offset, {{const_cast<char*>(data.data()), data.size()}}, ::pwritev);
  }

  Result<std::size_t> read_vectored(Handle h, std::uint64_t offset, std::span<const std::span<char>> into) override {
    return transfer_vectored(h, offset, iovecs_of(into), ::preadv);
  }

  Result<std::size_t> write_vectored(Handle h, std::uint64_t offset,
                                     std::span<const std::span<const char>> data) override {
    return transfer_vectored(h, offset, iovecs_of(data), ::pwritev);
  }

  Status fsync(Handle h, bool datasync) override {
    int fd = file_fd(h);
    if (fd < 0) return Errno{EBADF};
    if ((datasync ? ::fdatasync(fd) : ::fsync(fd)) != 0) return Errno{errno};
    return {};
  }

  void release(Handle h) override { files_.erase(h); }

  Result<Attr> fgetattr(Handle h) override {
    int fd = file_fd(h);
    if (fd < 0) return Errno{EBADF};
    return fstat_attr(fd);
  }

  Status fallocate(Handle h, int mode, std::uint64_t offset, std::uint64_t length) override {
    int fd = file_fd(h);
    if (fd < 0) return Errno{EBADF};
    if (::fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(length)) != 0) return Errno{errno};
    return {};
  }

  Result<std::uint64_t> lseek(Handle h, std::uint64_t offset, int whence) override {
    int fd = file_fd(h);
    if (fd < 0) return Errno{EBADF};
    off_t r = ::lseek(fd, static_cast<off_t>(offset), whence);
    if (r < 0) return Errno{errno};
    return static_cast<std::uint64_t>(r);
  }

  Result<Handle> opendir(const std::string& path) override {
    auto fd = open_beneath(root_.get(), path, O_RDONLY | O_DIRECTORY);
    if (!fd) return Errno{fd.error()};
    Handle h = next_handle_++;
    DirState& d = dirs_[h];
    d.fd = std::move(*fd);
    return h;
  }

  Status readdir(Handle h, std::uint64_t offset, const std::function<bool(const DirEntry&)>& emit) override;

  void releasedir(Handle h) override { dirs_.erase(h); }

  std::string describe() const override {
    return nlohmann::json{{"kind", "host_dir"},
                          {"root", root_path_.string()},
                          {"guest_uid", options_.guest_uid},
                          {"guest_gid", options_.guest_gid}}
        .dump();
  }

  Result<StatFs> statfs() override {
    struct statfs s {};
    if (::fstatfs(root_.get(), &s) != 0) return Errno{errno};
    StatFs out;
    out.blocks = s.f_blocks;
    out.bfree = s.f_bfree;
    out.bavail = s.f_bavail;
    out.files = s.f_files;
    out.ffree = s.f_ffree;
    out.bsize = static_cast<std::uint32_t>(s.f_bsize);
    out.frsize = static_cast<std::uint32_t>(s.f_frsize ? s.f_frsize : s.f_bsize);
    out.namelen = static_cast<std::uint32_t>(s.f_namelen);
    return out;
  }

  Result<std::string> getxattr(const std::string& path, const std::string& name) override;
  Result<std::vector<std::string>> listxattr(const std::string& path) override;
  Status setxattr(const std::string& path, const std::string& name, const std::string& value, int flags) override;
  Status removexattr(const std::string& path, const std::string& name) override;

 private:
  struct DirState {
    UniqueFd fd;
    std::vector<char> buf;
    std::size_t pos = 0, len = 0;
    std::uint64_t at = 0;     // listing offset of the entry at buf[pos]
    bool positioned = false;  // the descriptor's position matches `at` + the buffer
  };

  std::uint32_t guest_uid(uid_t host) const {
    if (host == host_uid_) return options_.guest_uid;
    return host == options_.guest_uid ? kNobody : host;
  }
  std::uint32_t guest_gid(gid_t host) const {
    if (host == host_gid_) return options_.guest_gid;
    return host == options_.guest_gid ? kNobody : host;
  }

  // chown within the mapping: to the guest's own ids (the invoking user on
  // the host), or to what the file already has.
  Result<std::pair<uid_t, gid_t>> host_owner(const struct stat& st, const SetAttr& c) const {
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    if (c.uid && *c.uid != guest_uid(st.st_uid)) {
      if (*c.uid != options_.guest_uid) return Errno{EPERM};
      uid = host_uid_;
    }
    if (c.gid && *c.gid != guest_gid(st.st_gid)) {
      if (*c.gid != options_.guest_gid) return Errno{EPERM};
      gid = host_gid_;
    }
    return std::pair{uid, gid};
  }

  Attr to_attr(const struct stat& st) const {
    Attr a;
    // Files on other file systems below the root (bind mounts) must not share
    // inode numbers with ours, or tar would take them for hard links.
    a.ino = st.st_ino ^ (st.st_dev == root_dev_ ? 0 : (static_cast<std::uint64_t>(st.st_dev) * 0x9e3779b97f4a7c15ull));
    a.mode = st.st_mode;
    a.nlink = static_cast<std::uint32_t>(st.st_nlink);
    a.uid = guest_uid(st.st_uid);
    a.gid = guest_gid(st.st_gid);
    a.size = static_cast<std::uint64_t>(st.st_size);
    a.blocks = static_cast<std::uint64_t>(st.st_blocks);
    a.blksize = static_cast<std::uint32_t>(st.st_blksize);
    a.rdev = static_cast<std::uint32_t>(st.st_rdev);
    a.atime = to_timespec(st.st_atim);
    a.mtime = to_timespec(st.st_mtim);
    a.ctime = to_timespec(st.st_ctim);
    return a;
  }

  Result<Attr> fstat_attr(int fd) const {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Errno{errno};
    return to_attr(st);
  }

  Result<Attr> stat_at(const ParentAndName& p) const {
    struct stat st {};
    if (::fstatat(p.dir.get(), p.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Errno{errno};
    return to_attr(st);
  }

  Status unlink_at(const std::string& path, int flags) {
    auto p = open_parent(root_.get(), path);
    if (!p) return Errno{p.error()};
    if (::unlinkat(p->dir.get(), p->name.c_str(), flags) != 0) return Errno{errno};
    return {};
  }

  Handle add_file(UniqueFd fd) {
    Handle h = next_handle_++;
    files_.emplace(h, std::move(fd));
    return h;
  }
  int file_fd(Handle h) const {
    auto it = files_.find(h);
    return it == files_.end() ? -1 : it->second.get();
  }

  // iovec is not const-correct; pwritev only reads through it.
  template <typename Char>
  static std::vector<iovec> iovecs_of(std::span<const std::span<Char>> pieces) {
    std::vector<iovec> iov;
    iov.reserve(pieces.size());
    for (auto piece : pieces) iov.push_back({const_cast<char*>(piece.data()), piece.size()});
    return iov;
  }

  // preadv/pwritev until every piece is done, end of file (reads) or an
  // error; an error after some bytes is a short count.
  using VectoredCall = ssize_t (*)(int, const iovec*, int, off_t);
  Result<std::size_t> transfer_vectored(Handle h, std::uint64_t offset, std::vector<iovec> iov, VectoredCall call) {
    int fd = file_fd(h);
    if (fd < 0) return Errno{EBADF};
    std::size_t done = 0;
    std::size_t first = 0;
    while (first < iov.size()) {
      if (iov[first].iov_len == 0) {
        ++first;
        continue;
      }
      const int count = static_cast<int>(std::min<std::size_t>(iov.size() - first, IOV_MAX));
      ssize_t n = call(fd, iov.data() + first, count, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        if (done > 0) break;
        return Errno{errno};
      }
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
      for (auto left = static_cast<std::size_t>(n); left > 0;) {
        const std::size_t step = std::min(left, iov[first].iov_len);
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + step;
        iov[first].iov_len -= step;
        left -= step;
        if (iov[first].iov_len == 0) ++first;
      }
    }
    return done;
  }

  // An O_PATH descriptor of a file whose xattrs may be touched, or an error:
  // only user.* names, never on symlinks (Linux refuses those there too).
  Result<UniqueFd> xattr_target(const std::string& path, const std::string& name, int not_allowed) const {
    if (name.compare(0, kUserXattrPrefix.size(), kUserXattrPrefix) != 0) return Errno{not_allowed};
    auto fd = open_beneath(root_.get(), path, O_PATH);
    if (!fd) return Errno{fd.error()};
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return Errno{errno};
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return Errno{not_allowed};
    return std::move(*fd);
  }

  UniqueFd root_;
  std::filesystem::path root_path_;  // as opened; a resume re-opens it by this name
  HostDirOptions options_;
  uid_t host_uid_;
  gid_t host_gid_;
  dev_t root_dev_ = 0;
  Handle next_handle_ = 1;
  std::unordered_map<Handle, UniqueFd> files_;
  std::unordered_map<Handle, DirState> dirs_;
};

Status HostDir::readdir(Handle h, std::uint64_t offset, const std::function<bool(const DirEntry&)>& emit) {
  auto it = dirs_.find(h);
  if (it == dirs_.end()) return Errno{EBADF};
  DirState& d = it->second;
  // Sequential listings continue from the buffer; anything else seeks (the
  // offsets are the host file system's own directory cookies).
  if (!d.positioned || offset != d.at) {
    if (::lseek(d.fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0) return Errno{errno};
    d.pos = d.len = 0;
    d.at = offset;
    d.positioned = true;
  }
  if (d.buf.empty()) d.buf.resize(kDirBufferSize);
  for (;;) {
    if (d.pos >= d.len) {
      long n = ::syscall(SYS_getdents64, d.fd.get(), d.buf.data(), d.buf.size());
      if (n < 0) {
        d.positioned = false;
        return Errno{errno};
      }
      if (n == 0) return {};
      d.pos = 0;
      d.len = static_cast<std::size_t>(n);
    }
    DirentHeader ent{};
    std::memcpy(&ent, d.buf.data() + d.pos, kDirentNameOffset);
    if (ent.d_reclen <= kDirentNameOffset || d.pos + ent.d_reclen > d.len) {
      d.positioned = false;
      return Errno{EIO};
    }
    const char* name = d.buf.data() + d.pos + kDirentNameOffset;
    DirEntry e;
    e.name.assign(name, ::strnlen(name, ent.d_reclen - kDirentNameOffset));
    e.ino = ent.d_ino;
    e.type = ent.d_type == DT_UNKNOWN ? 0u : static_cast<std::uint32_t>(DTTOIF(ent.d_type));
    e.next_offset = static_cast<std::uint64_t>(ent.d_off);
    if (!emit(e)) return {};
    d.pos += ent.d_reclen;
    d.at = e.next_offset;
  }
}

Result<std::string> HostDir::getxattr(const std::string& path, const std::string& name) {
  auto fd = xattr_target(path, name, ENODATA);
  if (!fd) return Errno{fd.error()};
  std::string proc = proc_fd_path(fd->get());
  for (int attempt = 0; attempt < 4; ++attempt) {
    ssize_t size = ::getxattr(proc.c_str(), name.c_str(), nullptr, 0);
    if (size < 0) return Errno{errno};
    std::string value(static_cast<std::size_t>(size), '\0');
    ssize_t n = ::getxattr(proc.c_str(), name.c_str(), value.data(), value.size());
    if (n >= 0) {
      value.resize(static_cast<std::size_t>(n));
      return value;
    }
    if (errno != ERANGE) return Errno{errno};  // ERANGE: it grew meanwhile
  }
  return Errno{EAGAIN};
}

Result<std::vector<std::string>> HostDir::listxattr(const std::string& path) {
  auto fd = open_beneath(root_.get(), path, O_PATH);
  if (!fd) return Errno{fd.error()};
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return Errno{errno};
  std::vector<std::string> out;
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return out;
  std::string proc = proc_fd_path(fd->get());
  ssize_t size = ::listxattr(proc.c_str(), nullptr, 0);
  if (size < 0) return errno == ENOTSUP ? Result<std::vector<std::string>>(out) : Errno{errno};
  std::string names(static_cast<std::size_t>(size), '\0');
  ssize_t n = ::listxattr(proc.c_str(), names.data(), names.size());
  if (n < 0) return Errno{errno};
  names.resize(static_cast<std::size_t>(n));
  for (std::size_t pos = 0; pos < names.size();) {
    std::size_t end = names.find('\0', pos);
    if (end == std::string::npos) end = names.size();
    std::string one = names.substr(pos, end - pos);
    if (one.compare(0, kUserXattrPrefix.size(), kUserXattrPrefix) == 0) out.push_back(std::move(one));
    pos = end + 1;
  }
  return out;
}

Status HostDir::setxattr(const std::string& path, const std::string& name, const std::string& value, int flags) {
  auto fd = xattr_target(path, name, EPERM);
  if (!fd) return Errno{fd.error()};
  if (::setxattr(proc_fd_path(fd->get()).c_str(), name.c_str(), value.data(), value.size(), flags) != 0)
    return Errno{errno};
  return {};
}

Status HostDir::removexattr(const std::string& path, const std::string& name) {
  auto fd = xattr_target(path, name, EPERM);
  if (!fd) return Errno{fd.error()};
  if (::removexattr(proc_fd_path(fd->get()).c_str(), name.c_str()) != 0) return Errno{errno};
  return {};
}

}  // namespace

std::shared_ptr<Provider> host_dir(const std::filesystem::path& root, HostDirOptions options) {
  int fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOTDIR) throw Error(ErrorKind::Usage, "host path " + root.string() + " is not a directory");
    throw Error(ErrorKind::Usage, "host directory " + root.string() + ": " + std::strerror(e));
  }
  UniqueFd owned(fd);
  if (::access("/proc/self/fd", F_OK) != 0)
    throw Error(ErrorKind::Io, "host directories need /proc mounted on the host");
  return std::make_shared<HostDir>(std::move(owned), std::filesystem::absolute(root).lexically_normal(), options);
}

}  // namespace gondolin::vfs
