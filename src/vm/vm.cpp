// Vm: the public facade over VmImpl.
#include "gondolin/vm.h"

#include <csignal>
#include <future>
#include <thread>

#include "gondolin/error.h"
#include "gondolin/image.h"
#include "proto/control_protocol.h"
#include "session/snapshot_store.h"
#include "util/logging.h"
#include "util/files.h"
#include "util/sha256.h"
#include "vfs/mount_description.h"
#include "vm/accel.h"
#include "vm/boot_template.h"
#include "vm/vm_impl.h"
#include "vm/vm_internals.h"

namespace gondolin {

namespace {
constexpr const char* kRootfsModeNames[] = {"cow", "memory", "readonly"};  // in enum order
}  // namespace

const char* to_string(RootfsMode mode) {
  auto i = static_cast<std::size_t>(mode);
  return i < std::size(kRootfsModeNames) ? kRootfsModeNames[i] : "?";
}

std::optional<RootfsMode> rootfs_mode_from_string(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kRootfsModeNames); ++i)
    if (name == kRootfsModeNames[i]) return static_cast<RootfsMode>(i);
  return std::nullopt;
}

const char* to_string(Accel accel) {
  switch (accel) {
    case Accel::Auto: return "auto";
    case Accel::Kvm: return "kvm";
    case Accel::Tcg: return "tcg";
  }
  return "?";
}

namespace {

// A KVM guest boots in well under this; if it has not, KVM is broken here.
constexpr std::chrono::seconds kKvmFirstBootLimit{20};

// A mount's saved node table: a million nodes of long names stay below this.
constexpr std::uintmax_t kMaxMountStateBytes = 512ull << 20;

// A memory mount's saved files: 1 TiB is the most a description may allow.
constexpr std::uintmax_t kMaxMountFilesBytes = 1ull << 40;

std::string read_mount_state(const std::filesystem::path& file, const std::string& what, bool optional = false,
                             std::uintmax_t max_bytes = kMaxMountStateBytes) {
  std::error_code ec;
  if (optional && !std::filesystem::exists(file, ec)) return "";
  auto size = std::filesystem::file_size(file, ec);
  if (ec || size > max_bytes)
    throw Error(ErrorKind::Usage, what + " is damaged: " + file.filename().string() + " is missing or too large");
  return read_file(file);
}

void write_chunks(VmImpl& impl, const std::string& path, std::string_view data, std::uint32_t mode, bool append) {
  std::size_t off = 0;
  do {
    proto::FileOp op;
    op.op = proto::FileOpKind::Write;
    op.path = path;
    op.mode = mode;
    op.offset = off;
    op.flags = append ? proto::kFileAppend : (off == 0 ? proto::kFileTruncate : 0);
    op.data = std::string(data.substr(off, proto::kMaxDataChunk));
    impl.file_op(op);
    off += op.data.size();
  } while (off < data.size());
}

void make_dir(VmImpl& impl, const std::string& path, bool parents, std::uint32_t mode) {
  proto::FileOp op;
  op.op = proto::FileOpKind::Mkdir;
  op.path = path;
  op.mode = mode;
  op.flags = parents ? proto::kFileParents : 0;
  impl.file_op(op);
}

// A kernel boot. An auto-chosen KVM (`probation`) that does not bring the
// guest up in `timeout` is broken here: the boot is retried under TCG.
std::unique_ptr<VmImpl> boot_cold(const Image& image, const VmOptions& options, const VmHooks& hooks,
                                  const vm::AccelChoice& choice, std::chrono::milliseconds timeout, bool probation) {
  auto impl = std::make_unique<VmImpl>(options, hooks);
  try {
    impl->boot(image, choice.accel, choice.reason, timeout);
    return impl;
  } catch (const BootTimedOut& e) {
    if (!probation) throw Error(e.kind(), e.what());
  }
  log().warn("the guest did not boot under KVM within {} s; falling back to TCG", kKvmFirstBootLimit.count());
  impl = std::make_unique<VmImpl>(options, hooks);
  try {
    impl->boot(image, Accel::Tcg, "KVM did not boot a guest in time; using TCG", options.boot_timeout);
  } catch (const BootTimedOut& e2) {
    throw Error(e2.kind(), e2.what());
  }
  return impl;
}

}  // namespace

void install_mitm_ca(VmImpl& vm, const std::string& pem) {
  make_dir(vm, "/etc/gondolin/mitm", true, 0755);
  write_chunks(vm, "/etc/gondolin/mitm/ca.crt", pem, 0644, false);
  make_dir(vm, "/etc/ssl/certs", true, 0755);
  write_chunks(vm, "/etc/ssl/certs/ca-certificates.crt", "\n" + pem, 0644, true);
}

Vm::Vm(std::unique_ptr<VmImpl> impl) : impl_(std::move(impl)) {}
Vm::Vm(Vm&&) noexcept = default;
Vm& Vm::operator=(Vm&&) noexcept = default;
Vm::~Vm() = default;

Vm VmInternals::create(VmOptions options, VmHooks hooks) {
  init_logging_from_env();
  Image image = ImageStore::default_store().resolve(options.image);
  vm::AccelChoice choice = vm::choose_accel(options.accel);
  log().info("accelerator: {} ({})", to_string(choice.accel), choice.reason);
  log().info("image: {} ({})", image.display_name(), image.dir.string());

  // Auto-chosen KVM gets a bounded first boot; a hang means KVM is broken here.
  const bool probation = options.accel == Accel::Auto && choice.accel == Accel::Kvm;
  auto timeout = probation ? std::min<std::chrono::milliseconds>(options.boot_timeout, kKvmFirstBootLimit)
                           : options.boot_timeout;
  // Most starts resume the image's boot template; the rest boot.
  vm::TemplateStart templated = vm::start_from_template(image, options, hooks, choice, timeout);
  std::unique_ptr<VmImpl> impl = std::move(templated.vm);
  if (!impl) {
    impl = boot_cold(image, options, hooks, choice, timeout, probation);
    if (!templated.failure.empty()) log().warn("{}; booted cold", templated.failure);
  }
  impl->register_session();
  Vm vm(std::move(impl));
  if (auto* egress = vm.impl_->egress()) {
    // A template made with this CA already has it.
    if (!vm.info().from_template) install_mitm_ca(*vm.impl_, egress->ca_certificate_pem());
    // The proxy's host key under every allowed SSH name: `git clone
    // git@HOST:...` works without a prompt, and nothing else is trusted.
    std::string known_hosts;
    for (const auto& line : egress->guest_ssh_known_hosts()) known_hosts += line + "\n";
    if (!known_hosts.empty()) {
      vm.mkdir("/etc/ssh", true, 0755);
      vm.append_file("/etc/ssh/ssh_known_hosts", known_hosts);
    }
  }
  return vm;
}

Vm Vm::create(VmOptions options) { return VmInternals::create(std::move(options), VmHooks{}); }

Vm Vm::resume(const std::string& snapshot, VmOptions options) {
  init_logging_from_env();
  // The state's hash is checked while QEMU starts (it is read again anyway);
  // a mismatch ends the VM before anyone can use it.
  session::LoadedSnapshot snap = session::load_snapshot(snapshot, /*verify_state=*/false);
  auto state_ok = std::async(std::launch::async, [&snap] {
    return sha256_file_hex(snap.dir / session::SnapshotManifest::kStateFile) == snap.manifest.state_sha256;
  });
  const session::SnapshotManifest& m = snap.manifest;
  std::string what = "snapshot " + m.id;
  if (m.agent_protocol != proto::kProtocolVersion)
    throw Error(ErrorKind::Usage, what + " was made by a gondolin with agent protocol " + std::to_string(m.agent_protocol) +
                                      "; this one speaks " + std::to_string(proto::kProtocolVersion));
  Image image = [&] {
    try {
      return ImageStore::default_store().resolve(m.image_id);
    } catch (const Error&) {
      throw Error(ErrorKind::Image, what + " needs image " + m.image_name + " (" + m.image_id +
                                        "), which is not in the image store");
    }
  }();
  if (sha256_file_hex(image.dir / "manifest.json") != m.image_manifest_sha256)
    throw Error(ErrorKind::Image, what + " was taken from a different build of image " + m.image_id);
  // The state only loads into the very same machine: same QEMU, same shape.
  std::string qemu = qemu_version_line(resolve_qemu_binary(options));
  if (qemu != m.qemu_version)
    throw Error(ErrorKind::Qemu, what + " was written by \"" + m.qemu_version + "\", this host has \"" + qemu + "\"");
  options.memory_mib = m.memory_mib;
  options.cpus = m.cpus;
  options.machine = m.machine;
  options.hostname = m.hostname;
  // The guest's root writes come back where they were: its memory for a
  // tmpfs root, a private copy of the saved disk for a cow root.
  // (Snapshots from before rootfs modes have none: their root was in memory.)
  options.rootfs_mode = rootfs_mode_from_string(m.rootfs_mode).value_or(RootfsMode::Memory);
  options.rootfs_size_bytes = m.rootfs_size;
  // The restored machine must have the devices it was saved with.
  {
    auto net = nlohmann::json::parse(m.network_json, nullptr, false);
    if (net.is_object() && net.contains("enabled") && net["enabled"].is_boolean())
      options.network.enabled = net["enabled"].get<bool>();
    // A resumer that names no hosts continues with the allowlist the session
    // had; one that does replaces it. (Secrets and SSH credentials are never
    // stored: they come from the resumer's flags.)
    NetworkOptions& n = options.network;
    if (n.allow_hosts.empty() && !n.allow_all_hosts && net.is_object()) {
      if (auto it = net.find("allow_hosts"); it != net.end() && it->is_array())
        for (const auto& h : *it)
          if (h.is_string()) n.allow_hosts.push_back(h.get<std::string>());
      if (auto it = net.find("allow_all_hosts"); it != net.end() && it->is_boolean()) n.allow_all_hosts = it->get<bool>();
      if (!n.allow_hosts.empty() || n.allow_all_hosts)
        log().info("resume: continuing with the snapshot's HTTP allowlist ({} pattern(s){})", n.allow_hosts.size(),
                   n.allow_all_hosts ? ", all hosts" : "");
    }
  }
  for (auto& kv : m.env) options.env.insert(options.env.begin(), kv);
  // Secrets: the resumer supplies the values again; the guest keeps the
  // placeholders it already has.
  for (auto& secret : options.network.secrets)
    for (const auto& [name, placeholder] : m.secret_placeholders)
      if (secret.name == name) secret.placeholder = placeholder;
  for (const auto& name : m.secret_names) {
    bool supplied = false;
    for (const auto& secret : options.network.secrets) supplied = supplied || secret.name == name;
    if (!supplied) log().warn("secret {} of snapshot {} was not supplied; requests using it go out unsubstituted", name, m.id);
  }
  // The guest kernel still has its mounts, each bound to a virtio-serial
  // port: the same mounts come back, rebuilt from their descriptions (host
  // directories re-opened by path). Others cannot be added to a restored
  // machine, so the resumer's own mounts are refused rather than ignored.
  if (!options.mounts.empty())
    throw Error(ErrorKind::Usage, what + " brings back its own mounts; --mount-hostfs, --mount-memfs and --hide "
                                         "cannot be combined with --resume");
  options.mounts = vfs::mounts_from_description(m.mounts_json, what);
  std::vector<std::string> mount_states, mount_files;
  for (std::size_t i = 0; i < options.mounts.size(); ++i) {
    mount_states.push_back(read_mount_state(snap.dir / session::SnapshotManifest::mount_state_file(i), what));
    mount_files.push_back(read_mount_state(snap.dir / session::SnapshotManifest::mount_files_file(i), what,
                                           /*optional=*/true, kMaxMountFilesBytes));
  }
  Accel accel = m.accel == "kvm" ? Accel::Kvm : Accel::Tcg;
  vm::AccelChoice choice = vm::decide_accel(accel, vm::gather_accel_facts(false));
  auto impl = std::make_unique<VmImpl>(options);
  std::vector<vfs::FsTransport> spares;
  for (const auto& t : m.spare_mount_slots)
    spares.push_back(t == "virtiofs" ? vfs::FsTransport::Virtiofs : vfs::FsTransport::Serial);
  impl->add_spare_mount_slots(spares);
  impl->restore_mount_states(mount_states, mount_files, what);
  if (options.rootfs_mode == RootfsMode::Cow) {
    std::filesystem::path disk = snap.dir / session::SnapshotManifest::kDiskFile;
    std::error_code ec;
    if (std::filesystem::file_size(disk, ec) != m.rootfs_size || ec)
      throw Error(ErrorKind::Usage, "snapshot " + snap.dir.string() + " is damaged: its root disk " +
                                        session::SnapshotManifest::kDiskFile + " is missing or has the wrong size");
    impl->restore_disk(disk);
  }
  try {
    impl->boot(image, choice.accel, "the snapshot was taken under " + m.accel, options.boot_timeout,
               snap.dir / session::SnapshotManifest::kStateFile);
  } catch (const Error& e) {
    if (!state_ok.get())
      throw Error(ErrorKind::Usage, "snapshot " + snap.dir.string() + " is damaged: the state's sha256 does not match");
    throw Error(e.kind(), e.what());
  }
  if (!state_ok.get()) {
    impl->close();
    throw Error(ErrorKind::Usage, "snapshot " + snap.dir.string() + " is damaged: the state's sha256 does not match");
  }
  impl->register_session();
  return Vm(std::move(impl));
}

SnapshotInfo Vm::snapshot(const std::filesystem::path& dir, AfterSnapshot after) {
  return impl_->snapshot(dir, after == AfterSnapshot::KeepRunning, {});
}

std::string Vm::session_id() const { return impl_ ? impl_->session_id() : std::string(); }

ExecResult Vm::exec(const Command& command, const ExecOptions& options) {
  ExecResult result;
  static_cast<ExitStatus&>(result) = exec_streaming(command, options, [&](OutputStream s, std::string_view d) {
    (s == OutputStream::Stdout ? result.stdout_data : result.stderr_data) += d;
  });
  return result;
}

Process Vm::spawn(const Command& command, const ExecOptions& options) { return impl_->spawn(command, options); }

ExitStatus Vm::exec_streaming(const Command& command, const ExecOptions& options,
                              const std::function<void(OutputStream, std::string_view)>& on_output) {
  Process p = spawn(command, options);
  // stdin_data is fed from a second thread: writing it all before reading
  // could deadlock once both directions' windows are full.
  std::thread feeder;
  if (!options.stdin_data.empty()) {
    feeder = std::thread([&p, &options] {
      try {
        p.write_stdin(options.stdin_data);
        p.close_stdin();
      } catch (const Error&) {
        // the process ended or the VM went away; wait() reports it
      }
    });
  }
  // If on_output throws, the command is killed so a blocked feeder wakes up.
  struct JoinOnExit {
    Process& p;
    std::thread& t;
    ~JoinOnExit() {
      if (!t.joinable()) return;
      if (std::uncaught_exceptions() > 0) p.send_signal(SIGKILL);
      t.join();
    }
  } join{p, feeder};
  while (auto chunk = p.read()) on_output(chunk->stream, chunk->data);
  return p.wait();
}

std::string Vm::read_file(const std::string& path) {
  std::string out;
  for (;;) {
    proto::FileOp op;
    op.op = proto::FileOpKind::Read;
    op.path = path;
    op.offset = out.size();
    op.length = proto::kMaxDataChunk;
    proto::FileResult r = impl_->file_op(op);
    out += r.data;
    if (r.eof || r.data.empty()) return out;
  }
}


void Vm::write_file(const std::string& path, std::string_view data, std::uint32_t mode) {
  write_chunks(*impl_, path, data, mode, false);
}

void Vm::append_file(const std::string& path, std::string_view data) { write_chunks(*impl_, path, data, 0644, true); }

GuestFileInfo Vm::stat(const std::string& path) {
  proto::FileOp op;
  op.op = proto::FileOpKind::Stat;
  op.path = path;
  proto::FileResult r = impl_->file_op(op);
  return GuestFileInfo{path, r.stat.mode, r.stat.size, r.stat.mtime_ns, r.stat.uid, r.stat.gid};
}

std::vector<GuestFileInfo> Vm::list_dir(const std::string& path) {
  std::vector<GuestFileInfo> out;
  for (;;) {
    proto::FileOp op;
    op.op = proto::FileOpKind::List;
    op.path = path;
    op.offset = out.size();
    proto::FileResult r = impl_->file_op(op);
    auto entries = proto::decode_dir_entries(r.data);
    if (!entries) throw Error(ErrorKind::Guest, "the guest sent a malformed directory listing for " + path);
    for (auto& e : *entries) out.push_back(GuestFileInfo{std::move(e.name), e.mode, 0, 0, 0, 0});
    if (r.eof || entries->empty()) return out;
  }
}

void Vm::rename(const std::string& from, const std::string& to) {
  proto::FileOp op;
  op.op = proto::FileOpKind::Rename;
  op.path = from;
  op.path2 = to;
  if (to.empty() || to[0] != '/') throw Error(ErrorKind::Usage, "guest path must be absolute: '" + to + "'");
  impl_->file_op(op);
}

void Vm::remove(const std::string& path) {
  proto::FileOp op;
  op.op = proto::FileOpKind::Remove;
  op.path = path;
  impl_->file_op(op);
}

void Vm::mkdir(const std::string& path, bool parents, std::uint32_t mode) { make_dir(*impl_, path, parents, mode); }

const VmInfo& Vm::info() const { return impl_->info(); }
std::uint64_t Vm::guest_oom_kills() const { return impl_->guest_oom_kills(); }
bool Vm::running() const { return impl_ && impl_->running(); }

void Vm::close() {
  if (impl_) impl_->close();
}

}  // namespace gondolin
