#include "fuse_mount.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "control_port.h"
#include "fuse_forwarder.h"
#include "kernel_modules.h"
#include "klog.h"
#include "root_layers.h"

namespace gondolin::agent {
namespace {

proto::MountResultMsg failure(int err, const std::string& what) {
  return proto::MountResultMsg{err ? err : EIO, what + ": " + std::strerror(err ? err : EIO)};
}

int make_directories(const std::string& path) {
  for (std::size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) == 0 || errno == EEXIST) continue;
    // A read-only root (--rootfs-mode readonly) still gets the mount points
    // the host asked for: writable for the one mkdir, read-only again after.
    if (errno != EROFS || !root_read_only() || set_root_read_only(false) != 0) return errno;
    int err = ::mkdir(prefix.c_str(), 0755) == 0 ? 0 : errno;
    set_root_read_only(true);
    if (err && err != EEXIST) return err;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno;
  return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

int open_fuse_device() {
  // devtmpfs creates the node when the module registers; give it a moment.
  for (int attempt = 0; attempt < 500; ++attempt) {
    int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT) return fd;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return -1;
}

// The forwarder: a child of the agent with nothing but the two descriptors.
[[noreturn]] void become_forwarder(int fuse_fd, int port_fd, std::size_t max_io, const std::string& port_name) {
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  // Descriptors 3 and 4, everything else closed (the agent's epoll, signalfd, control port).
  int f = ::fcntl(fuse_fd, F_DUPFD, 10);
  int p = ::fcntl(port_fd, F_DUPFD, 10);
  ::dup2(f, 3);
  ::dup2(p, 4);
  ::syscall(SYS_close_range, 5u, ~0u, 0u);
  std::string name = "gondolin-" + port_name.substr(sizeof("gondolin.") - 1);
  ::prctl(PR_SET_NAME, name.c_str());
  if (FILE* adj = std::fopen("/proc/self/oom_score_adj", "w")) {
    std::fputs("-1000", adj);
    std::fclose(adj);
  }
  ::_exit(run_fuse_forwarder(3, 4, max_io));
}

// Lets sequential reads come in requests as large as the mount allows
// (the default readahead is 128 KiB).
void raise_readahead(const std::string& path, std::uint32_t max_read) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  char bdi[96];
  std::snprintf(bdi, sizeof bdi, "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev), minor(st.st_dev));
  std::ofstream(bdi) << (max_read / 1024);
}

// virtio-fs: the guest kernel talks to the host's server itself; no relay.
proto::MountResultMsg mount_virtiofs(const proto::MountRequest& req) {
  if (int err = make_directories(req.guest_path)) return failure(err, "cannot create mount point " + req.guest_path);
  unsigned long flags = MS_NOSUID | MS_NODEV | ((req.flags & proto::kMountReadOnly) ? MS_RDONLY : 0);
  // The device is probed when the module registers; give a slow probe a moment.
  int err = 0;
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (::mount(req.port_name.c_str(), req.guest_path.c_str(), "virtiofs", flags, nullptr) == 0) {
      err = 0;
      break;
    }
    err = errno;
    if (err != ENOENT && err != ENODEV) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (err) return failure(err, "mount -t virtiofs " + req.port_name + " " + req.guest_path);
  struct stat st {};
  if (::stat(req.guest_path.c_str(), &st) != 0)
    return failure(errno, "the new mount " + req.guest_path + " does not answer");
  raise_readahead(req.guest_path, req.max_read);
  return proto::MountResultMsg{0, ""};
}

}  // namespace

proto::MountResultMsg mount_fuse(const proto::MountRequest& req) {
  kernel_modules().load("fs");
  if (req.flags & proto::kMountVirtiofs) return mount_virtiofs(req);
  if (int err = make_directories(req.guest_path)) return failure(err, "cannot create mount point " + req.guest_path);
  int port = open_named_port(req.port_name, std::chrono::seconds(2));
  if (port < 0) return failure(ENODEV, "virtio port " + req.port_name + " is missing");
  int fuse_fd = open_fuse_device();
  if (fuse_fd < 0) {
    int err = errno;
    ::close(port);
    return failure(err, "cannot open /dev/fuse");
  }
  char options[160];
  std::snprintf(options, sizeof options,
                "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions,max_read=%u", fuse_fd,
                req.max_read);
  unsigned long flags = MS_NOSUID | MS_NODEV | ((req.flags & proto::kMountReadOnly) ? MS_RDONLY : 0);
  if (::mount("gondolin", req.guest_path.c_str(), "fuse.gondolin", flags, options) != 0) {
    int err = errno;
    ::close(fuse_fd);
    ::close(port);
    return failure(err, "mount " + req.guest_path);
  }
  pid_t pid = ::fork();
  if (pid == 0) become_forwarder(fuse_fd, port, req.max_read, req.port_name);
  int fork_err = errno;
  ::close(fuse_fd);
  ::close(port);
  if (pid < 0) {
    ::umount2(req.guest_path.c_str(), MNT_DETACH);
    return failure(fork_err, "cannot start the forwarder for " + req.guest_path);
  }
  // The first access waits for the host's answer to FUSE_INIT, so success
  // here means the mount really works.
  struct stat st {};
  if (::stat(req.guest_path.c_str(), &st) != 0)
    return failure(errno, "the new mount " + req.guest_path + " does not answer");
  raise_readahead(req.guest_path, req.max_read);
  return proto::MountResultMsg{0, ""};
}

}  // namespace gondolin::agent
