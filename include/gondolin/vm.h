// A guest micro-VM: boot it, run commands in it, close it.
//
//   gondolin::Vm vm = gondolin::Vm::create({});
//   auto r = vm.exec(gondolin::Command::shell("uname -a"));
//   std::cout << r.stdout_data;
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// What Vm's signatures need whole: commands and their results (exec.h),
// and VmOptions' members (net_policy.h, vfs.h). The rest is declared below.
#include "gondolin/exec.h"
#include "gondolin/live_policy.h"
#include "gondolin/net_policy.h"
#include "gondolin/vfs.h"

namespace gondolin {

enum class Accel { Auto, Kvm, Tcg };

const char* to_string(Accel accel);

// Where the guest's writes to its root file system go. The image itself is
// never written.
enum class RootfsMode {
  Cow,       // an overlay whose upper layer is a sparse disk file of the VM's own
  Memory,    // an overlay whose upper layer is a tmpfs (bounded by guest RAM)
  Readonly,  // no writable root: writes fail with EROFS; /tmp, /run, /dev/shm are tmpfs
};

const char* to_string(RootfsMode mode);
// The inverse of to_string: "cow", "memory", "readonly"; nullopt otherwise.
std::optional<RootfsMode> rootfs_mode_from_string(std::string_view name);

struct VmOptions {
  // name:tag, image id (or unique prefix), or a path to an image directory or
  // its manifest.json. Empty: $GONDOLIN_DEFAULT_IMAGE, else debian-base:latest.
  std::string image;
  std::uint32_t memory_mib = 512;
  std::uint32_t cpus = 1;
  Accel accel = Accel::Auto;
  std::string machine = "microvm";                       // or "q35"
  std::string qemu_binary;                               // default: $GONDOLIN_QEMU, else qemu-system-x86_64 in PATH
  std::vector<std::pair<std::string, std::string>> env;  // every exec starts with these
  std::string hostname = "gondolin";
  RootfsMode rootfs_mode = RootfsMode::Cow;
  // Cow only: the disk's size, the most the guest can write (sparse: the host
  // pays only for what is written). Deleted with the VM.
  std::uint64_t rootfs_size_bytes = std::uint64_t{2} << 30;
  NetworkOptions network;
  // File systems the host serves to the guest (see gondolin/vfs.h); each is
  // mounted before create() returns.
  std::vector<vfs::Mount> mounts;
  // Register in the session list (gondolin list/attach/snapshot).
  bool register_session = true;
  std::string session_command;  // shown by `gondolin list`
  std::chrono::milliseconds boot_timeout{120000};
  // Boot the kernel instead of resuming the image's boot template (see
  // docs/sessions.md: clones of a template share its kernel's ASLR layout).
  // $GONDOLIN_COLD=1 makes every start cold.
  bool cold = false;
};

// How the VM came up, for logs and benchmarks.
struct VmInfo {
  std::string image_id;
  std::string image_name;  // name:tag, if the image has one
  Accel accel = Accel::Tcg;
  std::string accel_reason;       // why this accelerator was chosen
  std::string kernel_release;     // as reported by the guest
  double boot_seconds = 0;        // QEMU start to agent ready (host wall clock)
  double kernel_seconds = 0;      // guest uptime when the agent started
  double agent_init_seconds = 0;  // the agent's own boot work
  int qemu_pid = 0;
  // QEMU's own "major.minor.micro", asked over QMP at start (features that
  // need a newer QEMU are judged by it, not by the binary's name); empty if
  // QEMU did not say.
  std::string qemu_version;
  bool from_template = false;  // resumed the image's boot template instead of booting
};

// A file or directory inside the guest, as seen by the host file API.
struct GuestFileInfo {
  std::string name;        // list_dir: entry name; stat: the path asked for
  std::uint32_t mode = 0;  // st_mode: type and permission bits (list_dir: type only)
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint32_t uid = 0, gid = 0;
  bool is_directory() const { return (mode & 0170000) == 0040000; }
  bool is_regular() const { return (mode & 0170000) == 0100000; }
  bool is_symlink() const { return (mode & 0170000) == 0120000; }
};

enum class AfterSnapshot { Stop, KeepRunning };

struct SnapshotInfo;    // gondolin/session.h
struct GuestSshAccess;  // gondolin/guest_ssh.h
class VmImpl;
struct VmInternals;  // src/vm/vm_internals.h: hooks for tests and benchmarks

class Vm {
 public:
  // Boots a VM and waits until its agent answers. Throws gondolin::Error.
  static Vm create(VmOptions options);
  // Starts a VM from a snapshot (id, unique prefix, or directory): its
  // processes, files in tmpfs and open shells continue where they were. The
  // machine shape comes from the snapshot; `options` supplies the rest
  // (environment additions, secrets). Throws gondolin::Error.
  static Vm resume(const std::string& snapshot, VmOptions options);
  // Makes the boot template Vm::create(options) resumes, if there is none
  // yet, so that the first start is as fast as the next (`gondolin build`
  // prepares the default one). Returns "" once it is there, else why these
  // options boot cold. Throws gondolin::Error if making it fails.
  static std::string prepare_boot_template(VmOptions options);

  Vm(Vm&&) noexcept;
  Vm& operator=(Vm&&) noexcept;
  ~Vm();  // closes the VM

  // Runs a command to completion, collecting its output in memory.
  ExecResult exec(const Command& command, const ExecOptions& options = {});
  ExecResult exec(const std::vector<std::string>& argv, const ExecOptions& options = {}) {
    return exec(Command::argv(argv), options);
  }
  ExecResult exec(const std::string& shell_script, const ExecOptions& options = {}) {
    return exec(Command::shell(shell_script), options);
  }

  // Starts a command and returns at once; stream its output with Process::read.
  Process spawn(const Command& command, const ExecOptions& options = {});

  // Streaming convenience: calls the callbacks (on this thread) as output
  // arrives and returns the exit status.
  ExitStatus exec_streaming(const Command& command, const ExecOptions& options,
                            const std::function<void(OutputStream, std::string_view)>& on_output);

  // Host-side file access to the guest's own file system (through the agent).
  // Paths are absolute guest paths. Errors: gondolin::Error (kind Io) naming
  // the path and the guest's errno text.
  std::string read_file(const std::string& path);
  void write_file(const std::string& path, std::string_view data, std::uint32_t mode = 0644);
  void append_file(const std::string& path, std::string_view data);
  GuestFileInfo stat(const std::string& path);
  std::vector<GuestFileInfo> list_dir(const std::string& path);
  void rename(const std::string& from, const std::string& to);
  void remove(const std::string& path);  // a file, a symlink or an empty directory
  void mkdir(const std::string& path, bool parents = false, std::uint32_t mode = 0755);

  // Pauses the VM, saves its memory and device state under `dir` (default:
  // the snapshot store) and stops it: the VM is not usable afterwards. With
  // AfterSnapshot::KeepRunning it continues instead, so one live session can
  // be forked into any number of resumed copies.
  SnapshotInfo snapshot(const std::filesystem::path& dir = {}, AfterSnapshot after = AfterSnapshot::Stop);
  // The HTTP/HTTPS policy as it stands, and changes to it while the VM runs
  // (gondolin/live_policy.h). change_policy throws gondolin::Error (Usage)
  // naming a bad pattern or secret, and then changes nothing.
  PolicyState policy() const;
  PolicyState change_policy(const PolicyChange& change);
  // This VM's session id (empty if not registered).
  std::string session_id() const;
  // Lets the host ssh into the guest (gondolin/guest_ssh.h): idempotent, the
  // same access every time. Throws gondolin::Error (Usage) if the image has
  // no sshd.
  GuestSshAccess enable_ssh();

  const VmInfo& info() const;
  bool running() const;
  // How many processes the guest kernel's OOM killer has killed so far (as
  // reported on the guest's console: a hint for messages, the guest could fake it).
  std::uint64_t guest_oom_kills() const;

  // Powers the guest off (gracefully, then by force) and releases everything.
  void close();

 private:
  friend struct VmInternals;
  explicit Vm(std::unique_ptr<VmImpl> impl);
  std::unique_ptr<VmImpl> impl_;
};

}  // namespace gondolin
