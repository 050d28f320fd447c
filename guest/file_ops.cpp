#include "file_ops.h"

#include "root_layers.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

namespace gondolin::agent {
namespace {

// Keeps a List answer well inside one frame.
constexpr std::size_t kListBudget = 192 * 1024;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

int do_read(const proto::FileOp& op, proto::FileResult& res) {
  Fd fd(::open(op.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno;
  res.data.resize(op.length);
  std::size_t got = 0;
  while (got < op.length) {
    ssize_t n = ::pread(fd.get(), res.data.data() + got, op.length - got, static_cast<off_t>(op.offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) {
      res.eof = 1;
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  res.data.resize(got);
  return 0;
}

int do_write(const proto::FileOp& op) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
  if (op.flags & proto::kFileTruncate) flags |= O_TRUNC;
  if (op.flags & proto::kFileAppend) flags |= O_APPEND;
  Fd fd(::open(op.path.c_str(), flags, op.mode));
  if (fd.get() < 0) return errno;
  std::size_t done = 0;
  while (done < op.data.size()) {
    ssize_t n = (op.flags & proto::kFileAppend) ? ::write(fd.get(), op.data.data() + done, op.data.size() - done)
                                                : ::pwrite(fd.get(), op.data.data() + done, op.data.size() - done,
                                                           static_cast<off_t>(op.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    done += static_cast<std::size_t>(n);
  }
  return 0;
}

int do_list(const proto::FileOp& op, proto::FileResult& res) {
  DIR* dir = ::opendir(op.path.c_str());
  if (!dir) return errno;
  std::vector<proto::DirEntryInfo> all;
  while (dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    std::uint32_t mode = 0;
    if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) mode = st.st_mode & S_IFMT;
    all.push_back({std::move(name), mode});
  }
  ::closedir(dir);
  // Sorted, so successive pages (offset = index) are stable.
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  std::vector<proto::DirEntryInfo> page;
  std::size_t budget = 0;
  std::size_t i = op.offset < all.size() ? static_cast<std::size_t>(op.offset) : all.size();
  for (; i < all.size() && budget < kListBudget; ++i) {
    budget += all[i].name.size() + 8;
    page.push_back(all[i]);
  }
  res.eof = i >= all.size() ? 1 : 0;
  res.data = proto::encode_dir_entries(page);
  return 0;
}

int do_mkdir(const proto::FileOp& op) {
  if (!(op.flags & proto::kFileParents)) return ::mkdir(op.path.c_str(), op.mode) == 0 ? 0 : errno;
  for (std::size_t pos = 1; pos <= op.path.size(); ++pos) {
    if (pos != op.path.size() && op.path[pos] != '/') continue;
    std::string prefix = op.path.substr(0, pos);
    if (::mkdir(prefix.c_str(), op.mode) != 0 && errno != EEXIST) return errno;
  }
  struct stat st {};
  if (::stat(op.path.c_str(), &st) != 0) return errno;
  return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

}  // namespace

proto::FileResult perform_host_file_op(const proto::FileOp& op) {
  proto::FileResult res = perform_file_op(op);
  // A read-only root binds the guest's programs, not the host: its writes
  // (the egress CA at boot, Vm::write_file) go through the root made
  // writable for this one operation. Not a security boundary either way:
  // the guest is root and could remount / itself.
  if (res.error_number == EROFS && root_read_only() && set_root_read_only(false) == 0) {
    res = perform_file_op(op);
    set_root_read_only(true);
  }
  return res;
}

proto::FileResult perform_file_op(const proto::FileOp& op) {
  proto::FileResult res;
  int err = 0;
  switch (op.op) {
    case proto::FileOpKind::Read: err = do_read(op, res); break;
    case proto::FileOpKind::Write: err = do_write(op); break;
    case proto::FileOpKind::Stat: {
      struct stat st {};
      if (::lstat(op.path.c_str(), &st) != 0) {
        err = errno;
        break;
      }
      res.stat.mode = st.st_mode;
      res.stat.size = static_cast<std::uint64_t>(st.st_size);
      res.stat.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      res.stat.uid = st.st_uid;
      res.stat.gid = st.st_gid;
      break;
    }
    case proto::FileOpKind::List: err = do_list(op, res); break;
    case proto::FileOpKind::Rename: err = ::rename(op.path.c_str(), op.path2.c_str()) == 0 ? 0 : errno; break;
    case proto::FileOpKind::Remove: {
      struct stat st {};
      if (::lstat(op.path.c_str(), &st) != 0)
        err = errno;
      else if (S_ISDIR(st.st_mode))
        err = ::rmdir(op.path.c_str()) == 0 ? 0 : errno;
      else
        err = ::unlink(op.path.c_str()) == 0 ? 0 : errno;
      break;
    }
    case proto::FileOpKind::Mkdir: err = do_mkdir(op); break;
  }
  res.error_number = err;
  if (err) res.data.clear();
  return res;
}

}  // namespace gondolin::agent
