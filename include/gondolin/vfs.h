// Programmable guest file systems: what a mount in the guest contains is
// decided by a Provider in the host process.
//
//   gondolin::VmOptions o;
//   o.mounts.push_back({"/workspace", vfs::host_dir("/home/me/project")});
//   o.mounts.push_back({"/data", vfs::read_only(vfs::host_dir("/srv/data"))});
//   o.mounts.push_back({"/scratch", vfs::memory()});
//   o.mounts.back().provider = vfs::hide(o.mounts.back().provider, {"**/.env"});
//
// The guest kernel sees an ordinary POSIX file system (FUSE, served by this
// process); every request it makes ends in one Provider call on the VM's io
// thread. Write your own provider by deriving from Provider.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace gondolin::vfs {

// ---- Results ------------------------------------------------------------------
// Providers report failure as a positive errno value (ENOENT, EACCES, ...);
// the guest sees exactly that errno.

struct Errno {
  int value;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}                     // NOLINT: implicit by design
  Result(Errno e) : error_(e.value > 0 ? e.value : 5 /* EIO */) {}  // NOLINT
  bool ok() const { return error_ == 0; }
  explicit operator bool() const { return ok(); }
  int error() const { return error_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  std::optional<T> value_;
  int error_ = 0;
};

// Success or an errno.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Errno e) : error_(e.value > 0 ? e.value : 5) {}  // NOLINT
  static Status from_errno(int e) { return e == 0 ? Status() : Status(Errno{e}); }
  bool ok() const { return error_ == 0; }
  explicit operator bool() const { return ok(); }
  int error() const { return error_; }

 private:
  int error_ = 0;
};

// ---- Data ---------------------------------------------------------------------

struct Timespec {
  std::int64_t sec = 0;
  std::uint32_t nsec = 0;
};

// What stat(2) shows in the guest. uid/gid are guest ids.
struct Attr {
  std::uint64_t ino = 0;   // stable per file; hard links share it
  std::uint32_t mode = 0;  // type and permission bits, as st_mode
  std::uint32_t nlink = 1;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint64_t size = 0;
  std::uint64_t blocks = 0;  // 512-byte units actually allocated (sparse files report less)
  std::uint32_t blksize = 4096;
  std::uint32_t rdev = 0;
  Timespec atime, mtime, ctime;
};

struct TimeChange {
  bool now = false;  // set to the current time; otherwise to `time`
  Timespec time;
};

// The parts of a file's metadata a setattr changes; unset fields stay as they are.
struct SetAttr {
  std::optional<std::uint32_t> mode;  // permission bits only (07777)
  std::optional<std::uint32_t> uid;   // guest ids
  std::optional<std::uint32_t> gid;
  std::optional<std::uint64_t> size;  // truncate or extend
  std::optional<TimeChange> atime;
  std::optional<TimeChange> mtime;
};

struct StatFs {
  std::uint64_t blocks = 0, bfree = 0, bavail = 0;  // in units of frsize
  std::uint64_t files = 0, ffree = 0;
  std::uint32_t bsize = 4096, frsize = 4096, namelen = 255;
};

struct DirEntry {
  std::string name;
  std::uint32_t type = 0;  // file type bits of st_mode (S_IFREG, S_IFDIR, ...)
  std::uint64_t ino = 0;
  // Where the listing continues after this entry: the guest passes it back as
  // `offset` to readdir. Must be non-zero and unique within the listing.
  std::uint64_t next_offset = 0;
};

// Who asks, as the guest kernel reports it (guest ids).
struct Caller {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::uint32_t pid = 0;
};

// A provider's own name for an open file or directory.
using Handle = std::uint64_t;

struct Created {
  Handle handle = 0;
  Attr attr;
};

// ---- The interface ------------------------------------------------------------
//
// Paths are relative to the mount's root: "" is the root itself, "a/b" a file
// two levels down. The server guarantees every component is 1-255 bytes without
// '/' or NUL and is never "." or "..", so a provider never parses guest input.
// Threads: the calls for one mount come from one thread at a time, in order:
// the mount's own thread for a virtio-fs mount (the default), the VM's io
// thread for a virtio-serial one. Mounts are served concurrently, so a
// provider instance shared by two mounts must be thread-safe; one instance
// per mount needs no locking. Keep calls short: the guest's file operations
// wait on them (and, for a serial mount, everything else on the io thread).
//
// Unless stated otherwise, a call behaves like the Linux system call of the
// same name without following a symlink in the last component (the guest
// kernel resolves symlinks itself, through readlink).
class Provider {
 public:
  virtual ~Provider() = default;

  virtual Result<Attr> getattr(const std::string& path) = 0;  // lstat
  virtual Result<Attr> setattr(const std::string& path, const SetAttr& changes);
  virtual Result<std::string> readlink(const std::string& path);

  virtual Result<Attr> mknod(const std::string& path, std::uint32_t mode, std::uint32_t rdev, const Caller& caller);
  virtual Result<Attr> mkdir(const std::string& path, std::uint32_t mode, const Caller& caller);
  virtual Result<Attr> symlink(const std::string& target, const std::string& path, const Caller& caller);
  virtual Result<Attr> link(const std::string& existing, const std::string& new_path);
  virtual Status unlink(const std::string& path);
  virtual Status rmdir(const std::string& path);
  // flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE.
  virtual Status rename(const std::string& from, const std::string& to, unsigned flags);

  // flags are open(2) flags without O_CREAT/O_EXCL (O_ACCMODE, O_APPEND, O_TRUNC, O_SYNC, ...).
  virtual Result<Handle> open(const std::string& path, int flags);
  // Creates a regular file that does not exist yet (mode already has the umask applied).
  virtual Result<Created> create(const std::string& path, int flags, std::uint32_t mode, const Caller& caller);
  // Reads up to into.size() bytes; fewer only at end of file.
  virtual Result<std::size_t> read(Handle handle, std::uint64_t offset, std::span<char> into);
  virtual Result<std::size_t> write(Handle handle, std::uint64_t offset, std::span<const char> data);
  // The same with the bytes in several pieces, in order (virtio-fs hands over
  // the guest program's own pages). The defaults call read/write per piece;
  // override them where the store has preadv/pwritev.
  virtual Result<std::size_t> read_vectored(Handle handle, std::uint64_t offset, std::span<const std::span<char>> into);
  virtual Result<std::size_t> write_vectored(Handle handle, std::uint64_t offset,
                                             std::span<const std::span<const char>> data);
  // Called on every close() of a descriptor. The default, ENOSYS, says
  // "nothing to do": the guest kernel then stops sending flushes for this
  // mount, which saves a round trip per close().
  virtual Status flush(Handle handle);
  virtual Status fsync(Handle handle, bool datasync);
  virtual void release(Handle handle);
  // Attributes and changes through an open handle (fstat, ftruncate,
  // futimens): they work after the file was unlinked. The default (ENOSYS)
  // makes the server fall back to the path-based calls.
  virtual Result<Attr> fgetattr(Handle handle);
  virtual Result<Attr> fsetattr(Handle handle, const SetAttr& changes);
  virtual Status fallocate(Handle handle, int mode, std::uint64_t offset, std::uint64_t length);
  // SEEK_DATA / SEEK_HOLE (others never reach a provider).
  virtual Result<std::uint64_t> lseek(Handle handle, std::uint64_t offset, int whence);

  virtual Result<Handle> opendir(const std::string& path);
  // Lists entries from `offset` (0: the start) until `emit` returns false or
  // the directory ends. Include "." and ".." if the file system has them.
  virtual Status readdir(Handle handle, std::uint64_t offset, const std::function<bool(const DirEntry&)>& emit);
  virtual void releasedir(Handle handle);

  virtual Result<StatFs> statfs();

  // Extended attributes; the default is "not supported" (ENOTSUP).
  virtual Result<std::string> getxattr(const std::string& path, const std::string& name);
  virtual Result<std::vector<std::string>> listxattr(const std::string& path);
  virtual Status setxattr(const std::string& path, const std::string& name, const std::string& value, int flags);
  virtual Status removexattr(const std::string& path, const std::string& name);

  // True if every change is refused (EROFS); the guest then mounts read-only too.
  virtual bool read_only() const { return false; }

  // For snapshots: a JSON object from which a resume rebuilds an equivalent
  // provider ({"kind":"host_dir","root":"/abs/path",...}), or "" if it cannot
  // be rebuilt (its contents live in this process, or it is user-written):
  // a VM with such a mount cannot be snapshotted.
  virtual std::string describe() const { return {}; }
};

// ---- Providers we ship --------------------------------------------------------

struct HostDirOptions {
  // The invoking user's files appear in the guest as owned by these ids (the
  // guest runs commands as root, and git refuses repositories its user does
  // not own). Other host owners keep their ids, except that one which would
  // collide with these appears as 65534 (nobody).
  std::uint32_t guest_uid = 0;
  std::uint32_t guest_gid = 0;
};

// A host directory, read-write. Nothing outside `root` is ever reached: every
// path is resolved beneath it without following any symlink, symlinks are
// handed to the guest as symlinks, and files the guest creates belong to the
// user running gondolin. setuid/setgid bits and device nodes are refused;
// extended attributes are limited to the user.* namespace.
// Throws gondolin::Error (Usage) if `root` is not an existing directory.
std::shared_ptr<Provider> host_dir(const std::filesystem::path& root, HostDirOptions options = {});

struct MemoryOptions {
  std::uint64_t max_bytes = 1ull << 30;  // file data and names; beyond: ENOSPC
  std::uint64_t max_files = 1u << 20;    // beyond: ENOSPC
};
// An empty in-memory file system; its contents vanish with the VM.
std::shared_ptr<Provider> memory(MemoryOptions options = {});

// Refuses every change with EROFS; reads pass through.
std::shared_ptr<Provider> read_only(std::shared_ptr<Provider> inner);

// Makes paths matching any of `globs` invisible: they are ENOENT, left out of
// listings, and cannot be created (EACCES). Globs are relative to the mount
// root: '*' and '?' and [...] match within one component, "**" matches any
// number of components ("**/.env", ".git/config", "secrets/*.pem"). Anything
// below a hidden directory is hidden too. Throws gondolin::Error (Usage) for
// an invalid glob.
std::shared_ptr<Provider> hide(std::shared_ptr<Provider> inner, std::vector<std::string> globs);

// ---- Mounts -------------------------------------------------------------------

// How the guest reaches a mount's FUSE server.
enum class FsTransport {
  // virtio-fs where this host's QEMU can save its state in a snapshot (QEMU
  // 8.2 and later), else virtio-serial: the fast transport without giving
  // up snapshots. The default.
  Auto,
  // A virtio-serial port and a relay in the guest agent. Works with any
  // QEMU and survives snapshots; bulk transfers are slow (tens of MB/s under TCG).
  Serial,
  // virtio-fs: gondolin is QEMU's vhost-user-fs back-end and reads/writes
  // guest memory directly. Much faster for bulk data; the VM's RAM becomes a
  // memfd shared with gondolin (a snapshot keeps it as a sparse RAM image).
  // Snapshots carry the mount's FUSE session inside QEMU's device state
  // (QEMU 8.2 and later; QEMU 7.2 refuses such a snapshot).
  // The server runs on a thread of its own per mount.
  Virtiofs,
};

struct MountOptions {
  // How long the guest kernel may trust a name lookup (also a "no such file"
  // answer) and a file's attributes without asking again. Changes made on
  // the host side become visible after this long at most.
  std::chrono::milliseconds entry_timeout{1000};
  std::chrono::milliseconds attr_timeout{1000};
  // Keep file contents cached in the guest across opens; they are dropped
  // when the file's size or mtime changes.
  bool keep_cache = true;
  // Let the guest kernel collect writes in its page cache and send them in
  // big batches. Faster for small writes; a file changed on the host while
  // the guest has dirty data for it can lose either side's change.
  bool writeback_cache = false;
  FsTransport transport = FsTransport::Auto;
  // Open files with FOPEN_DIRECT_IO: reads and writes bypass the guest's page
  // cache and go straight between the guest process's buffers and the
  // provider (zero-copy in the guest with virtio-fs). No caching across
  // opens, and Linux 6.1 refuses mmap(MAP_SHARED) of such files (ENODEV);
  // MAP_PRIVATE (exec, git's pack files) still works.
  // When false over virtio-fs, bulk transfers still bypass the cache: files
  // opened write-only, and files of 64 MiB or more opened read-only.
  bool direct_io = false;
};

struct Mount {
  std::string guest_path;  // absolute; created in the guest if missing
  std::shared_ptr<Provider> provider;
  MountOptions options = {};
};

}  // namespace gondolin::vfs
