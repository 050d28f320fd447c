#include "vm/vm_impl.h"

#include <sys/socket.h>
#include <sys/wait.h>

#include <openssl/rand.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "config/tcp_rules.h"
#include "control/exec_request.h"
#include "net/net_stack.h"
#include "util/files.h"
#include "util/logging.h"
#include "util/no_sigpipe.h"
#include "util/paths.h"
#include "util/random_hex.h"
#include "util/subprocess.h"
#include "util/utc_time.h"
#include "vm/accel.h"
#include "vm/boot_template.h"
#include "vm/incoming_state.h"
#include "vm/qemu_command.h"
#include "vm/ram_image.h"

namespace gondolin {
namespace {

constexpr std::chrono::seconds kShutdownGrace{3};
constexpr std::chrono::seconds kFileOpTimeout{60};

std::pair<UniqueFd, UniqueFd> socket_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw Error(ErrorKind::Io, std::string("socketpair: ") + std::strerror(errno));
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

}  // namespace

// What FsTransport::Auto means on this host: virtio-fs if QEMU can snapshot it.
static vfs::FsTransport auto_mount_transport(const VmOptions& o) {
  const bool wanted = std::any_of(o.mounts.begin(), o.mounts.end(),
                                  [](const vfs::Mount& m) { return m.options.transport == vfs::FsTransport::Auto; });
  if (!wanted) return vfs::FsTransport::Serial;
  std::string which;
  if (binary_migrates_virtiofs(resolve_qemu_binary(o), &which)) return vfs::FsTransport::Virtiofs;
  log().info("mounts use virtio-serial: {} cannot snapshot virtio-fs mounts (QEMU 8.2 and later can)", which);
  return vfs::FsTransport::Serial;
}

VmImpl::VmImpl(VmOptions opts, VmHooks hooks)
    : opts_(std::move(opts)),
      work_(boost::asio::make_work_guard(io_)),
      hooks_(std::move(hooks)),
      mounts_(std::make_unique<vfs::MountSet>(opts_.mounts, auto_mount_transport(opts_))) {
  // Data the guest may still cache for a host-backed mount is written back
  // by the guest's sync at power-off, so those VMs shut down politely.
  life_.graceful_shutdown = mounts_->writable();
  // Before the io thread exists, so a bad policy throws cleanly. The
  // guest's environment gets the secret placeholders, never the values.
  if (opts_.network.enabled) {
    NetworkOptions& n = opts_.network;
    if (!n.ssh.allowed_hosts.empty()) {
      if (n.dns != DnsMode::Synthetic) throw Error(ErrorKind::Usage, "SSH egress needs synthetic DNS");
      if (n.host_mapping != SyntheticHostMapping::PerHost)
        log().info("SSH egress: synthetic DNS switched to per-host mapping, so SSH flows are attributed to host names");
      n.host_mapping = SyntheticHostMapping::PerHost;
    }
    // Mapped TCP finds its flows by name: each name gets its own address.
    if (config::require_per_host_dns_for_tcp_maps(opts_.network))
      log().info("mapped TCP: synthetic DNS now gives each name its own address (per-host mapping)");
    egress_ = std::make_unique<egress::EgressService>(io_, opts_.network);
  }
  thread_ = std::thread([this] {
    block_sigpipe_in_this_thread();
    io_.run();
  });
}

VmImpl::~VmImpl() { close(); }

void VmImpl::start_from_template(const std::filesystem::path& ram, const std::filesystem::path& disk) {
  start_.from_template = true;
  start_.memory.outside_state = true;
  if (mounts_->uses_virtiofs())
    start_.memory.copy = vm::copy_ram_to_memfd(ram);
  else
    use_memory_file(ram, false);
  if (!disk.empty()) restore_disk(disk);
}

void VmImpl::resume_ram_image(const std::filesystem::path& image) {
  start_.memory.copy = vm::ram_memfd_sized_for(image);
  start_.memory.outside_state = true;
  start_.ram_image = image;
}

// A state that leaves the RAM out loads once the RAM is in place: a
// snapshot's RAM image is copied into our memfd while QEMU starts (~40 ms
// of copying beside its ~95 ms; QEMU reads no RAM before the migration).
void VmImpl::load_state_when_ram_is_in(const std::string& uri) {
  auto load = [this, uri] {
    auto refused = [this](bool ok, const nlohmann::json& r) {
      if (!ok)
        finish_boot(vm::BootOutcome::Failed,
                    Error(ErrorKind::Qemu, std::string("QEMU cannot load the ") +
                                               (start_.from_template ? "boot template: " : "snapshot: ") + r.dump()));
    };
    guest_.qmp->execute("migrate-set-capabilities",
                        {{"capabilities", {{{"capability", "x-ignore-shared"}, {"state", true}}}}}, refused);
    guest_.qmp->execute("migrate-incoming", {{"uri", uri}}, refused);
  };
  if (start_.ram_image.empty()) return load();
  ram_filler_ = std::thread([this, load, image = start_.ram_image, memfd = start_.memory.copy.get()] {
    std::optional<Error> failed;
    try {
      vm::fill_ram_memfd(memfd, image);
    } catch (const Error& e) {
      failed = e;
    }
    boost::asio::post(io_, [this, load, failed] {
      if (!failed) return load();
      finish_boot(vm::BootOutcome::Failed, *failed);
      if (guest_.qemu) guest_.qemu->kill(SIGKILL);
    });
  });
}

std::string VmImpl::console_hint() const {
  std::string tail = guest_.console ? guest_.console->tail() : "";
  return tail.empty() ? "" : " (guest console: " + tail + ")";
}

// The guest's network device: our own stack (or the hooks' QEMU arguments).
// Returns QEMU's end of the link (kept open until QEMU has started).
UniqueFd VmImpl::start_network(vm::QemuLaunch& launch) {
  UniqueFd net_qemu;
  if (opts_.network.enabled && !hooks_.qemu_network_args.empty()) {
    launch.extra_args = hooks_.qemu_network_args;
  } else if (opts_.network.enabled) {
    // The guest's eth0 ends in our own stack, never in a host interface.
    net::NetLayout layout;
    if (hooks_.mtu) layout.mtu = hooks_.mtu;
    // Every new machine its own MAC (QEMU's 52:54:00 prefix): a clone of a
    // boot template is told it in Config, and the stack accepts only frames
    // from it. A resumed snapshot keeps the one its guest has: changing it
    // costs the guest ~20 ms of TCG time on the first command's path.
    if (start_.guest_mac)
      layout.guest_mac = *start_.guest_mac;
    else if (RAND_bytes(layout.guest_mac.data() + 3, 3) != 1)
      throw Error(ErrorKind::Internal, "no randomness for a MAC address");
    net::EgressFactory egress = hooks_.egress;
    if (!egress && egress_) egress = net::borrowed_egress(*egress_);
    net_ = std::make_unique<net::NetStack>(io_, opts_.network, egress, layout);
    net_qemu = net_->take_qemu_end();
    if (egress_)
      egress_->start_ingress([this](std::uint16_t guest_port, std::string& error) -> std::optional<UniqueFd> {
        if (!net_) {
          error = "the VM has no network";
          return std::nullopt;
        }
        return net_->connect_guest_port(guest_port, error);
      });
    const std::string mac = net::to_string(net_->layout().guest_mac);
    launch.devices.push_back({vm::network_device_args(opts_.machine, mac), net_qemu.get()});
  }
  return net_qemu;
}

void VmImpl::start_console_and_qmp(UniqueFd console_host, UniqueFd qmp_host) {
  guest_.console = std::make_shared<vm::GuestConsole>(io_, std::move(console_host), guest_.oom_kills);
  guest_.console->start();
  guest_.qmp = std::make_shared<vm::QmpClient>(io_, std::move(qmp_host));
  guest_.qmp->start();
  // Asked first thing: the reply is in before the guest can be ready (and,
  // for a resume, before query-migrate's, which is queued behind it).
  guest_.qmp->execute("query-version", nullptr, [this](bool ok, const nlohmann::json& r) {
    if (!ok || !r.is_object() || !r.contains("qemu") || !r["qemu"].is_object()) return;
    const nlohmann::json& q = r["qemu"];
    std::string version;
    for (const char* k : {"major", "minor", "micro"}) {
      if (!q.contains(k) || !q[k].is_number_unsigned()) return;
      version += (version.empty() ? "" : ".") + std::to_string(q[k].get<unsigned>());
    }
    info_.qemu_version = version;
    log().debug("QEMU {}", version);
  });
}

void VmImpl::arm_boot_timer(std::chrono::milliseconds timeout) {
  life_.timers.boot = std::make_unique<boost::asio::steady_timer>(io_, timeout);
  life_.timers.boot->async_wait([this, timeout](const boost::system::error_code& ec) {
    if (ec) return;
    finish_boot(
        vm::BootOutcome::TimedOut,
        Error(ErrorKind::Guest, "the guest did not start within " +
                                    std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) +
                                    " s" + console_hint()));
  });
}

void VmImpl::start_qemu_io(const Image& image, Accel accel, std::chrono::milliseconds timeout,
                           const vm::IncomingState& incoming) {
  auto [control_host, control_qemu] = socket_pair();
  auto [console_host, console_qemu] = socket_pair();
  auto [qmp_host, qmp_qemu] = socket_pair();
  vm::QemuLaunch launch = vm::launch_for(image, opts_, accel);
  launch.device_layout = start_.device_layout;
  launch.qemu_binary = resolve_qemu_binary(opts_);
  if (disk_) launch.writable_disk = disk_->path();
  launch.control_fd = control_qemu.get();
  launch.console_fd = console_qemu.get();
  launch.qmp_fd = qmp_qemu.get();
  // vm/incoming_state.h: zstd for a compressed state, else a pipe we fill
  // (not a plain file descriptor, which QEMU 10 deprecates for `fd:`).
  UniqueFd state_fd;
  if (!incoming.compressed_file.empty()) {
    launch.incoming_uri = "exec:zstd -q -dc " + shell_quote(incoming.compressed_file.string());
  } else if (incoming.raw_stream) {
    state_fd = vm::feed_through_pipe(io_, incoming.raw_stream);
    launch.incoming_fd = state_fd.get();
  }
  // A state that leaves the RAM out needs the capability that says so set
  // before the stream is read.
  launch.incoming_deferred = start_.memory.outside_state;
  UniqueFd net_qemu = start_network(launch);
  launch.extra_args.insert(launch.extra_args.end(), hooks_.qemu_extra_args.begin(), hooks_.qemu_extra_args.end());
  // One virtio-serial port per file system slot, next to the control port,
  // or a vhost-user-fs device whose back-end is us.
  std::vector<vfs::MountPort> fs_ports = mounts_->create_ports();
  launch.vhost_user = mounts_->uses_virtiofs();
  launch.memory_file = start_.memory.path;
  launch.memory_file_shared = start_.memory.shared;
  launch.memory_fd = start_.memory.copy.get();
  if (start_.from_template) launch.kernel.clear();
  for (const auto& port : fs_ports)
    launch.devices.push_back(
        vm::FdDevice{vm::mount_device_args(opts_.machine, port.port_name, port.transport == vfs::FsTransport::Virtiofs),
                     port.qemu_end.get()});
  vm::QemuCommand command = vm::build_qemu_command(launch);

  std::string line;
  for (const auto& a : command.argv) line += (line.empty() ? "" : " ") + a;
  log().debug("qemu command: {}", line);

  start_console_and_qmp(std::move(console_host), std::move(qmp_host));
  auto channel = std::make_shared<control::ControlChannel>(io_, std::move(control_host));
  guest_.control = std::make_shared<control::ControlClient>(io_, channel);
  // A dead control channel means a dead VM: QEMU is stopped, and its exit
  // handler reports why (QEMU's own words if it had any, else this reason).
  auto on_dead = [this](const std::string& why) {
    if (life_.death_reason.empty()) life_.death_reason = why;
    life_.running = false;
    if (guest_.qemu) guest_.qemu->kill(SIGKILL);
  };
  auto on_hello = [this](const proto::Hello& h) { this->on_hello(h); };
  start_.resumed = !incoming.empty();

  if (net_) net_->start();
  life_.boot_started = std::chrono::steady_clock::now();
  guest_.qemu = vm::QemuProcess::start(io_, command.argv, command.fds, [this](int status) { on_qemu_exit(status); });
  info_.qemu_pid = guest_.qemu->pid();
  mounts_->start(io_);
  if (start_.resumed) {
    guest_.control->start_resumed(on_hello, on_dead);
    if (start_.memory.outside_state) load_state_when_ram_is_in(command.incoming_uri);
    continue_after_restore();
  } else {
    guest_.control->start(on_hello, on_dead);
  }

  arm_boot_timer(timeout);
}

// An incoming QEMU loads the state while paused (-S); once the migration
// stream is in, let it run. The agent then finds our Resume frame waiting.
void VmImpl::continue_after_restore() {
  guest_.qmp->execute("query-migrate", nullptr, [this](bool ok, const nlohmann::json& r) {
    std::string status = ok ? r.value("status", "") : "";
    if (status == "completed") {
      guest_.qmp->execute("cont", nullptr, [this](bool cont_ok, const nlohmann::json& cr) {
        if (!cont_ok)
          finish_boot(vm::BootOutcome::Failed,
                      Error(ErrorKind::Qemu, "QEMU cannot continue the restored VM: " + cr.dump()));
      });
      return;
    }
    if (status == "failed" || !ok) {
      finish_boot(vm::BootOutcome::Failed,
                  mount_state_failure().value_or(
                      Error(ErrorKind::Qemu, "QEMU could not load the snapshot state" +
                                                 (guest_.qemu ? ": " + guest_.qemu->error_text() : std::string()))));
      if (guest_.qemu) guest_.qemu->kill(SIGKILL);
      return;
    }
    life_.timers.restore = std::make_unique<boost::asio::steady_timer>(io_, std::chrono::milliseconds(5));
    life_.timers.restore->async_wait([this](const boost::system::error_code& ec) {
      if (!ec) continue_after_restore();
    });
  });
}

void VmImpl::on_hello(const proto::Hello& hello) {
  info_.kernel_release = hello.kernel_release;
  info_.kernel_seconds = static_cast<double>(hello.uptime_at_start_ns) / 1e9;
  info_.agent_init_seconds = static_cast<double>(hello.init_duration_ns) / 1e9;
  info_.boot_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - life_.boot_started).count();
  // Clock and entropy on every (re)start: a resumed guest's clock lags by the
  // time it spent in the snapshot, and two resumes of one snapshot must not
  // share their random state.
  proto::Config cfg;
  auto now = std::chrono::system_clock::now().time_since_epoch();
  cfg.realtime_ns = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count());
  cfg.entropy.resize(64);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(cfg.entropy.data()), 64) != 1) cfg.entropy.clear();
  cfg.hostname = opts_.hostname;
  if (net_) cfg.mac.assign(net_->layout().guest_mac.begin(), net_->layout().guest_mac.end());
  // A resumed session is the same machine; a new one (cold or from a template) is not.
  if (!start_.resumed || start_.from_template) cfg.machine_id = random_hex(16);
  guest_.control->send_config(cfg);
  log().debug("agent boot phases: {}", hello.boot_report);
  if (!hello.init_extra_error.empty() && (!start_.resumed || start_.from_template))
    log().warn("the image's init_extra failed: {}", hello.init_extra_error);
  // A resumed guest still has its mounts (the kernel state came along); a
  // template had none.
  mount_from(start_.resumed && !start_.from_template ? mounts_->size() : 0);
}

void VmImpl::mount_from(std::size_t index) {
  if (index >= mounts_->size()) return boot_ready();
  guest_.control->mount(mounts_->request(index), [this, index](const proto::MountResultMsg& r,
                                                               const std::string& failure) {
    if (failure.empty() && r.error_number == 0) return mount_from(index + 1);
    std::string why = failure.empty() ? r.message : failure;
    finish_boot(vm::BootOutcome::Failed,
                Error(ErrorKind::Guest, "cannot mount " + mounts_->mount(index).guest_path + " in the guest: " + why));
  });
}

void VmImpl::boot_ready() {
  if (life_.timers.boot) life_.timers.boot->cancel();
  life_.running = true;
  log().info("guest {} in {:.2f} s (kernel {:.2f} s, agent init {:.3f} s, {} with {})",
             start_.from_template ? "ready from its boot template"
             : start_.resumed     ? "resumed"
                                  : "ready",
             info_.boot_seconds, info_.kernel_seconds, info_.agent_init_seconds, info_.kernel_release,
             to_string(info_.accel));
  if (!mounts_->empty())
    log().info("{} file system(s) mounted {:.2f} s after the agent was ready", mounts_->size(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - life_.boot_started).count() -
                   info_.boot_seconds);
  finish_boot(vm::BootOutcome::Ready);
}

// A mount that refused its saved state says why better than QEMU does
// (QEMU's "Back-end failed to process its internal state").
std::optional<Error> VmImpl::mount_state_failure() const {
  std::string why = start_.resumed ? mounts_->state_error() : std::string();
  if (why.empty()) return std::nullopt;
  return Error(ErrorKind::Usage, "the snapshot's file system state is damaged: " + why);
}

void VmImpl::on_qemu_exit(int status) {
  life_.running = false;
  std::string qemu_text = guest_.qemu->error_text();
  Error why(ErrorKind::Qemu, "QEMU failed: " + qemu_text);
  if (qemu_text.empty()) {
    // With -no-reboot, a guest reboot or power-off is QEMU exiting 0 unasked.
    const bool guest_stopped = !life_.stop_requested && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    why = !life_.death_reason.empty() ? Error(ErrorKind::Guest, life_.death_reason + console_hint())
          : guest_stopped ? Error(ErrorKind::Guest, "the guest rebooted or powered off (a gondolin VM does not reboot)")
                          : Error(ErrorKind::Qemu, "QEMU " + describe_wait_status(status) + console_hint());
  }
  // QEMU exits when a restore fails, sometimes before query-migrate says so.
  if (auto state_failure = mount_state_failure()) why = *state_failure;
  if (life_.death_reason.empty()) life_.death_reason = why.what();
  if (guest_.control) guest_.control->fail_all(Error(ErrorKind::Guest, "the VM stopped: " + life_.death_reason));
  life_.timers.cancel_all();
  if (guest_.console) guest_.console->close();
  if (guest_.qmp) guest_.qmp->close();
  finish_boot(vm::BootOutcome::Failed, why);
  life_.qemu_gone.set();
}

void VmImpl::boot(const Image& image, Accel accel, const std::string& accel_reason, std::chrono::milliseconds timeout,
                  const vm::IncomingState& incoming) {
  image_ = image;
  info_.image_id = image.manifest.id;
  info_.image_name = image.display_name();
  info_.accel = accel;
  info_.accel_reason = accel_reason;
  info_.from_template = start_.from_template;
  // The image's environment comes first, so the VM's and each exec's win.
  // (A resumed VM's options already hold it, from the snapshot.)
  if (incoming.empty() || start_.from_template)
    opts_.env.insert(opts_.env.begin(), image.manifest.env.begin(), image.manifest.env.end());
  if (opts_.rootfs_mode == RootfsMode::Cow && !disk_) disk_ = vm::WritableDisk::create(opts_.rootfs_size_bytes);
  // A virtio-fs back-end (us) shares the guest's RAM: ours, so that QEMU can
  // leave it out of a snapshot's state (vm/ram_image.h says why).
  if (mounts_->uses_virtiofs() && start_.memory.path.empty() && !start_.memory.copy)
    start_.memory.copy = vm::new_ram_memfd(std::uint64_t{opts_.memory_mib} << 20);
  on_io([&] { start_qemu_io(image, accel, timeout, incoming); });
  vm::BootResult::Ended ended = life_.boot_result.wait();
  if (ended.outcome != vm::BootOutcome::Ready) {
    close();
    if (ended.outcome == vm::BootOutcome::TimedOut) throw BootTimedOut(*ended.error);
    throw *ended.error;
  }
}

void VmImpl::register_session() {
  if (!opts_.register_session) return;
  SessionInfo s;
  s.image = info_.image_name + " (" + info_.image_id + ")";
  s.image_id = info_.image_id;
  s.started = now_rfc3339();
  s.command = opts_.session_command.empty() ? "(api)" : opts_.session_command;
  s.accel = to_string(info_.accel);
  s.network = opts_.network.enabled ? "on" : "off";
  endpoints_.open(std::move(s), *this);
}

Process VmImpl::spawn(const Command& cmd, const ExecOptions& o) {
  // The image's defaults (an OCI config's WorkingDir and User) unless asked otherwise.
  ExecOptions merged = o;
  if (merged.cwd.empty()) merged.cwd = image_.manifest.workdir;
  if (!merged.user) merged.user = image_.manifest.user;
  require_running();
  auto state = on_io([&] {
    // The VM's environment, the secrets' placeholders as they stand now (a
    // live policy change may add some), then the command's own.
    merged.env = opts_.env;
    if (egress_)
      for (auto& kv : egress_->guest_env()) merged.env.push_back(std::move(kv));
    merged.env.insert(merged.env.end(), o.env.begin(), o.env.end());
    return guest_.control->start_exec(control::exec_start_for(cmd, merged), o.timeout);
  });
  return detail::make_process(std::move(state));
}

PolicyState VmImpl::policy(const std::optional<PolicyChange>& change, uid_t uid) {
  if (!egress_) throw Error(ErrorKind::Usage, "this VM has no network policy (network off, or custom egress)");
  return on_io([&] { return change ? egress_->change_policy(*change, uid) : egress_->policy_state(); });
}

GuestSshAccess VmImpl::enable_ssh() {
  require_running();
  return endpoints_.enable_ssh([this](const Command& c, const ExecOptions& o) { return spawn(c, o); },
                               [this](const std::string& path, std::string_view data, std::uint32_t mode) {
                                 write_guest_file(*this, path, data, mode);
                               });
}

Process VmImpl::attach(const proto::ExecStart& request) {
  auto [command, options] = control::exec_options_from(request);
  return spawn(command, options);
}

proto::FileResult VmImpl::file_op(const proto::FileOp& op) {
  if (op.path.empty() || op.path[0] != '/' || op.path.find('\0') != std::string::npos ||
      op.path.size() > proto::kMaxPathLength)
    throw Error(ErrorKind::Usage, "guest path must be absolute: '" + op.path + "'");
  require_running();
  auto future = on_io([&] { return guest_.control->file_op(op); });
  // The agent answers file operations at once; silence means it is broken or hostile.
  if (future.wait_for(kFileOpTimeout) != std::future_status::ready)
    throw Error(ErrorKind::Guest, "the guest did not answer a file operation on " + op.path + " within " +
                                      std::to_string(kFileOpTimeout.count()) + " s");
  proto::FileResult r = future.get();
  if (r.error_number != 0) throw Error(ErrorKind::Io, "guest file " + op.path + ": " + std::strerror(r.error_number));
  return r;
}

void VmImpl::require_running() const {
  if (!life_.running)
    throw Error(ErrorKind::Guest,
                "the VM is not running" + (life_.death_reason.empty() ? "" : ": " + life_.death_reason));
}

void VmImpl::kill_and_wait() {
  auto gone = life_.qemu_gone.future();
  bool have_qemu = on_io([&] {
    if (!guest_.qemu || guest_.qemu->exited()) return false;
    life_.stop_requested = true;
    // Everything the guest wrote lives in its overlay (tmpfs or the VM's own
    // disk) and dies with it, so killing QEMU loses nothing. Host-backed state that may sit dirty in
    // the guest (life_.graceful_shutdown) gets a sync and power-off first.
    if (life_.running && life_.graceful_shutdown)
      guest_.control->request_shutdown();
    else
      guest_.qemu->kill(SIGKILL);
    life_.timers.shutdown = std::make_unique<boost::asio::steady_timer>(io_, kShutdownGrace);
    life_.timers.shutdown->async_wait([this](const boost::system::error_code& ec) {
      if (!ec && guest_.qemu) guest_.qemu->kill(SIGKILL);
    });
    return true;
  });
  if (have_qemu) gone.wait();
  life_.running = false;
}

void VmImpl::close() {
  {
    std::lock_guard lock(life_.close_mutex);
    if (life_.closed) return;
    life_.closed = true;
  }
  // QEMU first: session clients (attach) and host -> guest SSH connections
  // wait on guest processes, which a stopped VM has failed, so neither a
  // command that ignores SIGHUP nor a guest that never answers can hold
  // close() up; requests still arriving fail cleanly (the io thread runs
  // until teardown_io).
  kill_and_wait();
  endpoints_.close();
  teardown_io();
}

void VmImpl::teardown_io() {
  if (ram_filler_.joinable()) ram_filler_.join();  // it writes our memfd and posts to io_
  on_io([&] {
    if (guest_.control) guest_.control->fail_all(Error(ErrorKind::Guest, "the VM was closed"));
    if (guest_.console) guest_.console->close();
    if (guest_.qmp) guest_.qmp->close();
    mounts_->close();
    life_.timers.cancel_all();
  });
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
  // The io thread is gone: the stack's sockets close without handlers running.
  net_.reset();
  guest_.control.reset();
  guest_.console.reset();
  guest_.qmp.reset();
  guest_.qemu.reset();  // kills and reaps QEMU if it somehow still runs
  disk_.reset();        // QEMU is gone: nobody writes it any more
  life_.timers = {};
}

}  // namespace gondolin
