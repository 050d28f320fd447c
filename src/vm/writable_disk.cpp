#include "vm/writable_disk.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "gondolin/error.h"
#include "util/logging.h"
#include "util/paths.h"
#include "util/random_hex.h"
#include "util/sparse_copy.h"
#include "util/subprocess.h"
#include "util/unique_fd.h"

namespace gondolin::vm {
namespace fs = std::filesystem;
namespace {

fs::path disks_dir() { return paths::cache_dir() / "disks"; }

// Directories whose owner process is gone (killed before it could clean up).
void remove_orphans(const fs::path& root) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::string name = entry.path().filename().string();
    std::size_t dash = name.find('-');
    if (dash == std::string::npos || dash == 0) continue;
    pid_t pid = static_cast<pid_t>(std::strtol(name.substr(0, dash).c_str(), nullptr, 10));
    if (pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code rm;
    fs::remove_all(entry.path(), rm);
    if (!rm) log().debug("removed the disk of a gondolin that died: {}", entry.path().string());
  }
}

}  // namespace

WritableDisk WritableDisk::make_dir() {
  fs::path root = disks_dir();
  std::error_code ec;
  fs::create_directories(root, ec);
  ::chmod(root.c_str(), 0700);
  remove_orphans(root);
  fs::path dir = root / (std::to_string(::getpid()) + "-" + random_hex(6));
  if (::mkdir(dir.c_str(), 0700) != 0)
    throw Error(ErrorKind::Io, "cannot create the VM's disk directory " + dir.string() + ": " + std::strerror(errno));
  return WritableDisk(dir);
}

WritableDisk WritableDisk::create(std::uint64_t size_bytes) {
  if (size_bytes < kMinBytes || size_bytes > kMaxBytes)
    throw Error(ErrorKind::Usage, "the root disk size must be between 64M and 16T");
  WritableDisk disk = make_dir();
  const fs::path file = disk.path();
  {
    UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd || ::ftruncate(fd.get(), static_cast<off_t>(size_bytes)) != 0)
      throw Error(ErrorKind::Io, "cannot create the VM's disk " + file.string() + ": " + std::strerror(errno));
  }
  fs::path mkfs = paths::find_program("mkfs.ext4");
  if (mkfs.empty())
    throw Error(ErrorKind::Usage, "mkfs.ext4 not found (apt-get install e2fsprogs), needed for --rootfs-mode cow");
  // No journal: the disk dies with the VM (a snapshot copies it while QEMU
  // is stopped and flushed). Lazy inode tables, never zeroed (the guest
  // mounts with noinit_itable): the file stays sparse.
  CommandResult r = run_command({mkfs.string(), "-q", "-F", "-m", "0", "-O", "^has_journal", "-E",
                                 "lazy_itable_init=1,nodiscard", "-L", "gondolin-rw", file.string()});
  if (!r.ok()) throw Error(ErrorKind::Io, "mkfs.ext4 failed on " + file.string() + ": " + r.output.substr(0, 300));
  return disk;
}

WritableDisk WritableDisk::copy_of(const fs::path& source) {
  WritableDisk disk = make_dir();
  bool reflinked = copy_sparse_file(source, disk.path());
  log().debug("root disk {} from {}", reflinked ? "reflinked" : "copied", source.string());
  return disk;
}

void WritableDisk::copy_to(const fs::path& dest) const { copy_sparse_file(path(), dest); }

WritableDisk::WritableDisk(WritableDisk&& other) noexcept : dir_(std::move(other.dir_)) { other.dir_.clear(); }

WritableDisk& WritableDisk::operator=(WritableDisk&& other) noexcept {
  if (this != &other) {
    WritableDisk gone(std::move(*this));
    dir_ = std::move(other.dir_);
    other.dir_.clear();
  }
  return *this;
}

WritableDisk::~WritableDisk() {
  if (dir_.empty()) return;
  std::error_code ec;
  fs::remove_all(dir_, ec);
  if (ec) log().warn("could not remove the VM's disk {}: {}", dir_.string(), ec.message());
}

}  // namespace gondolin::vm
