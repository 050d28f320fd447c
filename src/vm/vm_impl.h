// VmImpl: one VM. Owns the io thread; everything that touches QEMU's sockets
// runs there. Public methods may be called from any thread.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "control/control_client.h"
#include "egress/egress_service.h"
#include "gondolin/error.h"
#include "gondolin/image.h"
#include "gondolin/vm.h"
#include "net/egress_factory.h"
#include "net/ip_address.h"
#include "session/session_server.h"
#include "util/once_event.h"
#include "util/ram_digest.h"
#include "vfs/mount_set.h"
#include "vm/boot_result.h"
#include "vm/guest_console.h"
#include "vm/guest_ssh_server.h"
#include "vm/incoming_state.h"
#include "vm/qemu_command.h"
#include "vm/qemu_process.h"
#include "vm/qemu_version.h"
#include "vm/qmp_client.h"
#include "vm/session_endpoints.h"
#include "vm/vm_internals.h"
#include "vm/writable_disk.h"

namespace gondolin {

namespace session {
class SessionRecord;
struct SnapshotManifest;
}  // namespace session
namespace net {
class NetStack;
}

// A boot that ran out of time, as distinct from one that failed outright: only
// the former makes an auto-chosen KVM fall back to TCG.
class BootTimedOut : public Error {
 public:
  explicit BootTimedOut(const Error& e) : Error(e.kind(), e.what()) {}
};

class VmImpl : public session::SessionHost {
 public:
  explicit VmImpl(VmOptions opts, VmHooks hooks = {});
  ~VmImpl() override;

  // Starts QEMU and waits for the agent's Hello. With an `incoming` state,
  // QEMU restores it instead of booting. Throws (BootTimedOut on timeout).
  void boot(const Image& image, Accel accel, const std::string& accel_reason, std::chrono::milliseconds timeout,
            const vm::IncomingState& incoming = {});
  // Before boot() of a resume: the mounts' FUSE state saved with the snapshot,
  // in mount order. Throws gondolin::Error (Usage) if it does not fit.
  void restore_mount_states(const std::vector<std::string>& states, const std::vector<std::string>& files,
                            const std::string& origin) {
    mounts_->restore_states(states, files, origin);
  }
  // Before boot() of a resume: the snapshot's writable root disk, copied
  // (reflinked where possible) so each resume writes its own. Throws.
  void restore_disk(const std::filesystem::path& snapshot_disk) { disk_ = vm::WritableDisk::copy_of(snapshot_disk); }
  // Before boot(): guest RAM in `file` (see vm::QemuLaunch::memory_file).
  void use_memory_file(const std::filesystem::path& file, bool shared) {
    start_.memory.path = file;
    start_.memory.shared = shared;
  }
  // Before boot() with a template's state: this start resumes a boot template
  // (a new session, not a continued one). `disk` is the template's root disk.
  // Its RAM maps the template's privately, or, if a vhost-user back-end must
  // share it (virtio-fs slots), is a copy of its own. Throws.
  void start_from_template(const std::filesystem::path& ram, const std::filesystem::path& disk);
  // Before boot() of a resume whose snapshot keeps the RAM beside the state
  // (vm/ram_image.h): the VM gets a copy of that image, filled while QEMU
  // starts. Throws.
  void resume_ram_image(const std::filesystem::path& image);
  // Before boot() of a resume: secrets the session had revoked stay so.
  // Throws gondolin::Error (Usage) naming a damaged entry.
  void restore_revoked_secrets(std::vector<egress::RevokedSecret> revoked);
  // Before boot(): spare file system slots (vfs::MountSet::add_spare_slots).
  void add_spare_mount_slots(const std::vector<vfs::FsTransport>& transports) { mounts_->add_spare_slots(transports); }
  // Before boot() of a resume: the devices the snapshot's VM had (vm::kDeviceLayout).
  void use_device_layout(std::uint32_t layout) { start_.device_layout = layout; }
  // Before boot() of a resume: eth0's MAC in the snapshot, which the guest has.
  void keep_guest_mac(const net::Mac& mac) { start_.guest_mac = mac; }
  // Every file system slot's transport: the mounts', then the spares'.
  std::vector<vfs::FsTransport> mount_slots() const { return mounts_->slot_transports(); }
  // After boot(): pauses the guest at its ready point and saves it as a boot
  // template into `dir` (state, root disk), then stops the VM. Throws.
  void save_template(const std::filesystem::path& dir);
  // Puts the VM in the session registry (after a successful boot).
  void register_session();

  Process spawn(const Command& cmd, const ExecOptions& o);
  proto::FileResult file_op(const proto::FileOp& op);
  void close();
  // The handlers the network stack hands guest TCP flows to (null without network).
  egress::EgressService* egress() { return egress_.get(); }

  // session::SessionHost
  Process attach(const proto::ExecStart& request) override;
  SnapshotInfo snapshot(const std::filesystem::path& dir, bool keep_running,
                        const std::function<void(const SnapshotInfo&)>& saved) override;
  PolicyState policy(const std::optional<PolicyChange>& change, uid_t uid) override;
  GuestSshAccess enable_ssh() override;

  const VmInfo& info() const { return info_; }
  std::uint64_t guest_oom_kills() const { return guest_.oom_kills->load(); }
  const VmOptions& options() const { return opts_; }
  bool running() const { return life_.running.load(); }
  std::string session_id() const { return endpoints_.id(); }

 private:
  // Runs `f` on the io thread and returns its result (rethrowing its exception).
  template <typename F>
  auto on_io(F&& f) {
    using R = decltype(f());
    std::packaged_task<R()> task(std::forward<F>(f));
    auto fut = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return fut.get();
  }

  void finish_boot(vm::BootOutcome outcome, std::optional<Error> error = std::nullopt) {
    life_.boot_result.finish(outcome, std::move(error));
  }
  void start_qemu_io(const Image& image, Accel accel, std::chrono::milliseconds timeout,
                     const vm::IncomingState& incoming);
  // Parts of start_qemu_io (io thread).
  UniqueFd start_network(vm::QemuLaunch& launch);
  void start_console_and_qmp(UniqueFd console_host, UniqueFd qmp_host);
  void arm_boot_timer(std::chrono::milliseconds timeout);
  void load_state_when_ram_is_in(const std::string& uri);
  void continue_after_restore();
  std::optional<Error> mount_state_failure() const;
  void on_qemu_exit(int status);
  void on_hello(const proto::Hello& hello);
  // Mounts file system `index` and those after it, then declares the boot done.
  void mount_from(std::size_t index);
  void boot_ready();
  std::string console_hint() const;
  void kill_and_wait();
  void teardown_io();

  // Throws gondolin::Error (Guest) saying why, unless the VM runs.
  void require_running() const;
  // Runs one QMP command on the io thread and waits for its reply.
  nlohmann::json qmp(const std::string& command, nlohmann::json arguments = nullptr);
  // QEMU's state into `state_file`: zstd-compressed if its name ends in
  // .zst (a snapshot's that holds the RAM), else as QEMU writes it (devices
  // only: a boot template's, or a snapshot's whose RAM is in its own file).
  void save_state(const std::filesystem::path& state_file);
  // Quiets the agent, pauses QEMU, writes its state (`state_name` inside
  // `dir`), the RAM image (RAM of our own) and the root disk into `dir`; on
  // failure the guest runs on and this throws.
  struct Frozen {
    double pause_seconds = 0;
    RamDigest ram_digest;  // the RAM image's digest, if one was written
  };
  Frozen freeze_into(const std::filesystem::path& dir, const std::string& state_name);
  // Ends QEMU after freeze_into, without asking the paused guest to shut down.
  void stop_paused_guest();
  // Everything a snapshot's manifest says about this session but its state file.
  void describe_into(session::SnapshotManifest& m);

  VmOptions opts_;
  VmInfo info_;
  Image image_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  // The handlers the network stack hands guest TCP flows to (null without network).
  std::unique_ptr<egress::EgressService> egress_;
  std::thread thread_;

  // The started VM's channels (io thread; QEMU's exit handler ends them).
  struct GuestChannels {
    std::shared_ptr<vm::QemuProcess> qemu;
    std::shared_ptr<control::ControlClient> control;  // the agent's
    std::shared_ptr<vm::GuestConsole> console;
    // The guest's OOM kills, counted by the console, read by any thread.
    std::shared_ptr<std::atomic<std::uint64_t>> oom_kills = std::make_shared<std::atomic<std::uint64_t>>(0);
    std::shared_ptr<vm::QmpClient> qmp;
  } guest_;
  VmHooks hooks_;
  std::unique_ptr<net::NetStack> net_;  // when opts_.network.enabled
  std::unique_ptr<vfs::MountSet> mounts_;
  std::optional<vm::WritableDisk> disk_;  // RootfsMode::Cow: the guest's writable layer
  // What this VM starts from (a kernel boot, a boot template, a snapshot)
  // and the RAM and devices that implies; set before boot(), read after.
  struct StartSource {
    bool resumed = false;        // from a saved state: a template's or a snapshot's
    bool from_template = false;  // a boot template's
    std::uint32_t device_layout = vm::kDeviceLayout;
    std::optional<net::Mac> guest_mac;  // a snapshot's; else every start draws one
    struct MemoryFile {
      std::filesystem::path path;  // a template's RAM: the one being made (shared), or resumed (private)
      bool shared = false;
      // Or RAM of our own, mapped shared (vm/ram_image.h): a virtio-fs VM's,
      // empty at a cold boot, else a copy of a template's or a snapshot's.
      UniqueFd copy;
      bool outside_state = false;  // the state to resume leaves RAM out (x-ignore-shared)
    } memory;
    std::filesystem::path ram_image;  // a snapshot's RAM image, copied into memory.copy while QEMU starts
  } start_;
  std::thread ram_filler_;  // that copy; joined before the io thread goes

  // Where the VM is in its life: starting, running, stopping, gone, closed.
  struct Lifecycle {
    std::chrono::steady_clock::time_point boot_started;
    vm::BootResult boot_result;  // the start's outcome, awaited by boot()
    // io thread: the deadlines of a start, of a polite shutdown, and the
    // poll for a restored state.
    struct Timers {
      std::unique_ptr<boost::asio::steady_timer> boot, shutdown, restore;
      void cancel_all() {
        for (auto* t : {&boot, &shutdown, &restore})
          if (*t) (*t)->cancel();
      }
    } timers;
    std::atomic<bool> running{false};
    std::string death_reason;        // why it stopped, for every later call's error
    bool stop_requested = false;     // io thread: we asked QEMU to go (kill_and_wait)
    bool graceful_shutdown = false;  // set by subsystems whose data the guest may cache
    OnceEvent qemu_gone;             // set when QEMU's exit has been handled
    std::mutex close_mutex;
    bool closed = false;
  } life_;

  vm::SessionEndpoints endpoints_;  // the registry entry, session socket and guest SSH; closed once QEMU is gone
};

// A whole file into the guest through the agent (Vm::write_file's path).
void write_guest_file(VmImpl& vm, const std::string& path, std::string_view data, std::uint32_t mode);

// After boot(): the guest trusts the host's MITM CA (the certificate, never
// the key): its own copy, plus the system bundle curl, git and python read.
void install_mitm_ca(VmImpl& vm, const std::string& pem);

}  // namespace gondolin
