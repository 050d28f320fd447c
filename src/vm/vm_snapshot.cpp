// Snapshots, saved and resumed side by side. Save: the agent goes quiet at a
// frame boundary, QEMU pauses and migrates its RAM and device state through
// zstd into a file, and the session stops (or goes on). Resume: the
// manifest (session/snapshot_manifest.h, one typed record) says which image,
// QEMU and machine the state needs; QEMU starts with those devices, paused,
// loads the state, continues, and the agent learns it has a new host.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <future>

#include "config/ssh_rules.h"
#include "gondolin/version.h"
#include "net/net_stack.h"
#include "session/snapshot_manifest.h"
#include "session/snapshot_store.h"
#include "util/files.h"
#include "util/logging.h"
#include "util/random_hex.h"
#include "util/sha256.h"
#include "util/subprocess.h"
#include "util/utc_time.h"
#include "vfs/mount_description.h"
#include "vm/accel.h"
#include "vm/boot_template.h"
#include "vm/incoming_state.h"
#include "vm/ram_image.h"
#include "vm/vm_impl.h"

namespace gondolin {
namespace fs = std::filesystem;
namespace {

using session::SnapshotManifest;

constexpr std::chrono::seconds kPrepareTimeout{10};
constexpr std::chrono::seconds kMigrateTimeout{300};
// Pauses tried before giving up on catching every mount between two FUSE requests.
constexpr int kQuietMountTries = 50;

// A mount's saved node table: a million nodes of long names stay below this.
constexpr std::uintmax_t kMaxMountStateBytes = 512ull << 20;
// An uncompressed state (devices only; vhost-user-fs carries a mount's node
// table in it) is read whole into memory before QEMU loads it.
constexpr std::uint64_t kMaxRawStateBytes = 1ull << 30;
// A memory mount's saved files: 1 TiB is the most a description may allow.
constexpr std::uintmax_t kMaxMountFilesBytes = 1ull << 40;

std::string read_mount_state(const fs::path& file, const std::string& what, bool optional = false,
                             std::uintmax_t max_bytes = kMaxMountStateBytes) {
  std::error_code ec;
  if (optional && !fs::exists(file, ec)) return "";
  auto size = fs::file_size(file, ec);
  if (ec || size > max_bytes)
    throw Error(ErrorKind::Usage, what + " is damaged: " + file.filename().string() + " is missing or too large");
  return read_file(file);
}

// Disk blocks a (sparse) file takes.
std::uint64_t stored_bytes(const fs::path& file) {
  struct stat st {};
  return ::stat(file.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_blocks) * 512 : 0;
}

// The image the snapshot was taken from, exactly as it was built then.
Image snapshot_image(const SnapshotManifest& m, const std::string& what) {
  Image image = [&] {
    try {
      return ImageStore::default_store().resolve(m.image_id);
    } catch (const Error&) {
      throw Error(ErrorKind::Image,
                  what + " needs image " + m.image_name + " (" + m.image_id + "), which is not in the image store");
    }
  }();
  if (sha256_file_hex(image.dir / "manifest.json") != m.image_manifest_sha256)
    throw Error(ErrorKind::Image, what + " was taken from a different build of image " + m.image_id);
  return image;
}

// A resumer that names no hosts continues with the allowlist the session
// had; one that does replaces it. (Secrets and SSH credentials are never
// stored: they come from the resumer's flags.)
void continue_network(const session::SnapshotNetwork& saved, NetworkOptions& n) {
  n.enabled = saved.enabled;
  // Denials always carry over (the resumer may add more); the rest only
  // when the resumer gives no allowlist of its own.
  n.deny_hosts.insert(n.deny_hosts.begin(), saved.deny_hosts.begin(), saved.deny_hosts.end());
  if (n.allow_internal_hosts.empty()) n.allow_internal_hosts = saved.allow_internal_hosts;
  if (!n.allow_hosts.empty() || n.allow_all_hosts) return;
  n.allow_hosts = saved.allow_hosts;
  n.allow_all_hosts = saved.allow_all_hosts;
  if (!n.allow_hosts.empty() || n.allow_all_hosts)
    log().info("resume: continuing with the snapshot's HTTP allowlist ({} pattern(s){})", n.allow_hosts.size(),
               n.allow_all_hosts ? ", all hosts" : "");
}

// Secrets: the resumer supplies the values again; the guest keeps the
// placeholders it already has.
void continue_secrets(const SnapshotManifest& m, NetworkOptions& n) {
  for (auto& secret : n.secrets)
    for (const auto& [name, placeholder] : m.secret_placeholders)
      if (secret.name == name) secret.placeholder = placeholder;
  for (const auto& name : m.secret_names) {
    bool supplied = false;
    for (const auto& secret : n.secrets) supplied = supplied || secret.name == name;
    if (!supplied)
      log().warn("secret {} of snapshot {} was not supplied; requests using it go out unsubstituted", name, m.id);
  }
}

// What the saved state needs of the machine it loads into; `options` keeps
// only what a resumer may choose (allowlist, secrets, timeouts).
void restore_options(const SnapshotManifest& m, VmOptions& options, const std::string& what) {
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
  continue_network(m.network, options.network);
  for (auto& kv : m.env) options.env.insert(options.env.begin(), kv);
  continue_secrets(m, options.network);
  // The guest kernel still has its mounts, each bound to its channel: the
  // same mounts come back, rebuilt from their descriptions (host
  // directories re-opened by path). Others cannot be added to a restored
  // machine, so the resumer's own mounts are refused rather than ignored.
  if (!options.mounts.empty())
    throw Error(ErrorKind::Usage, what +
                                      " brings back its own mounts; --mount-hostfs, --mount-memfs and --hide "
                                      "cannot be combined with --resume");
  options.mounts = vfs::mounts_from_description(m.mounts_json, what);
}

}  // namespace

nlohmann::json VmImpl::qmp(const std::string& command, nlohmann::json arguments) {
  std::promise<std::pair<bool, nlohmann::json>> reply;
  auto fut = reply.get_future();
  boost::asio::post(io_, [&] {
    if (!guest_.qmp) return reply.set_value({false, nlohmann::json{{"error", {{"desc", "no QMP connection"}}}}});
    guest_.qmp->execute(command, std::move(arguments), [&reply](bool ok, const nlohmann::json& r) {
      reply.set_value({ok, r});
    });
  });
  auto [ok, r] = fut.get();
  if (!ok) {
    std::string desc = r.contains("error") ? r["error"].value("desc", r.dump()) : r.dump();
    throw Error(ErrorKind::Qemu, "QEMU refused " + command + ": " + desc);
  }
  return r;
}

void VmImpl::save_state(const fs::path& state_file) {
  qmp("stop");
  // A FUSE request or reply in flight between the guest and this process
  // would be lost with this process: let it land, then pause again.
  for (int tries = 0; !on_io([&] { return mounts_->quiet(); }); ++tries) {
    if (tries == kQuietMountTries)
      throw Error(ErrorKind::Guest, "the guest's file system traffic did not pause; try the snapshot again");
    qmp("cont");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    qmp("stop");
  }
  // A template's RAM is its file, and RAM of our own is saved beside the
  // state (freeze_into): the state leaves both out. A VM that maps a
  // template privately has its RAM in the state, like any other (the
  // capability its start set is turned off again).
  if (!start_.memory.path.empty() || start_.memory.copy)
    qmp("migrate-set-capabilities",
        {{"capabilities",
          {{{"capability", "x-ignore-shared"}, {"state", start_.memory.shared || start_.memory.copy.valid()}}}}});
  // zstd -1 keeps the pause short; zero pages are already elided by QEMU.
  // The guest's RAM holds its keys, tokens and files: the file is the
  // owner's alone whatever our umask (it is created after `umask 077`).
  const std::string writer = state_file.extension() == ".zst" ? "exec zstd -q -1 -T0 -o " : "exec cat > ";
  qmp("migrate", {{"uri", "exec:umask 077 && " + writer + shell_quote(state_file.string())}});
  auto deadline = std::chrono::steady_clock::now() + kMigrateTimeout;
  for (;;) {
    auto r = qmp("query-migrate");
    std::string status = r.value("status", "");
    if (status == "completed") return;
    if (status == "failed" || status == "cancelled")
      throw Error(ErrorKind::Qemu, "QEMU could not write the snapshot: " + r.value("error-desc", status));
    if (std::chrono::steady_clock::now() > deadline) throw Error(ErrorKind::Qemu, "writing the snapshot took too long");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

VmImpl::Frozen VmImpl::freeze_into(const fs::path& dir, const std::string& state_name) {
  // 1. The agent finishes the frame it is writing and goes silent.
  std::promise<void> ready;
  auto ready_future = ready.get_future();
  on_io([&] { guest_.control->prepare_snapshot([&ready] { ready.set_value(); }); });
  if (ready_future.wait_for(kPrepareTimeout) != std::future_status::ready) {
    on_io([&] { guest_.control->abort_snapshot(); });
    throw Error(ErrorKind::Guest, "the guest agent did not get ready for the snapshot");
  }
  // 2. QEMU pauses and writes RAM + device state.
  auto started = std::chrono::steady_clock::now();
  Frozen frozen;
  try {
    save_state(dir / state_name);
    if (start_.memory.copy)
      frozen.ram_digest = vm::save_ram_image(start_.memory.copy.get(), dir / session::SnapshotManifest::kRamFile);
    // The migration flushed the disk and QEMU writes nothing until `cont`:
    // the copy matches the memory image.
    if (disk_) disk_->copy_to(dir / session::SnapshotManifest::kDiskFile);
  } catch (const Error&) {
    try {
      qmp("cont");
    } catch (const Error&) {}
    on_io([&] { guest_.control->abort_snapshot(); });
    throw;
  }
  frozen.pause_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return frozen;
}

void VmImpl::save_template(const fs::path& dir) {
  require_running();
  if (start_.memory.path.empty() || !start_.memory.shared || !mounts_->empty())
    throw Error(ErrorKind::Internal, "a boot template needs shared file-backed RAM and no mounts");
  freeze_into(dir, vm::kTemplateStateFile);
  life_.death_reason = "saved as a boot template";
  on_io([&] { guest_.control->fail_all(Error(ErrorKind::Guest, life_.death_reason)); });
  stop_paused_guest();
}

// The guest is paused with its state saved: it can neither answer a
// shutdown request (kill_and_wait would wait out the grace period for one)
// nor may it run on, and write host mounts, past the state it was saved in.
void VmImpl::stop_paused_guest() {
  life_.running = false;
  kill_and_wait();
}

// Everything the manifest says about this session but the state file.
void VmImpl::describe_into(SnapshotManifest& m) {
  m.created = now_rfc3339();
  m.image_id = image_.manifest.id;
  m.image_name = image_.display_name();
  m.image_manifest_sha256 = sha256_file_hex(image_.dir / "manifest.json");
  m.memory_mib = opts_.memory_mib;
  m.device_layout = start_.device_layout;
  m.cpus = opts_.cpus;
  m.machine = opts_.machine;
  m.accel = to_string(info_.accel);
  m.hostname = opts_.hostname;
  m.rootfs_mode = to_string(opts_.rootfs_mode);
  m.rootfs_size = disk_ ? opts_.rootfs_size_bytes : 0;
  m.qemu_version = qemu_version_line(resolve_qemu_binary(opts_));
  m.gondolin_version = kVersion;
  m.agent_protocol = proto::kProtocolVersion;
  const NetworkOptions& n = opts_.network;
  m.network.enabled = n.enabled;
  if (net_) m.network.guest_mac = net_->layout().guest_mac;
  m.network.dns = n.dns == DnsMode::Synthetic ? "synthetic" : n.dns == DnsMode::Trusted ? "trusted" : "open";
  for (const auto& h : n.ssh.allowed_hosts) m.network.ssh_allow_hosts.push_back(config::format_ssh_allowed_host(h));
  // The HTTP policy as it stands now (live changes included).
  if (egress_) {
    PolicyState policy = on_io([&] { return egress_->policy_state(); });
    m.network.allow_hosts = policy.allow_hosts;
    m.network.allow_all_hosts = policy.allow_all_hosts;
    m.network.deny_hosts = policy.deny_hosts;
    m.network.allow_internal_hosts = policy.allow_internal_hosts;
    for (const auto& s : policy.secrets) {
      m.secret_names.push_back(s.name);
      m.secret_placeholders.emplace_back(s.name, s.placeholder);
    }
    for (const auto& r : on_io([&] { return egress_->revoked_secrets(); }))
      m.revoked_placeholders.emplace_back(r.name, r.placeholder);
  }
  // The base environment holds no placeholders (each exec gets them from
  // the policy): resume re-adds them from secret_placeholders, paired with
  // the values the resumer supplies.
  m.env = opts_.env;
}

SnapshotInfo VmImpl::snapshot(const fs::path& requested_dir, bool keep_running,
                              const std::function<void(const SnapshotInfo&)>& saved) {
  require_running();
  session::SnapshotManifest m;
  // Refused before anything is paused: every mount must be rebuildable on resume.
  m.mounts_json = vfs::describe_mounts(mounts_->mounts());
  m.spare_mount_slots = mounts_->spare_slots();
  if (std::string why = mounts_->unsavable_reason(); !why.empty())
    throw Error(ErrorKind::Usage, why + (info_.qemu_version.empty() ? "" : "; this is QEMU " + info_.qemu_version) +
                                      "; mount it with transport=serial to take snapshots");
  m.id = random_hex(8);
  fs::path dir = requested_dir.empty() ? session::snapshots_dir() / m.id : fs::absolute(requested_dir);
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec))
    throw Error(ErrorKind::Usage, "snapshot directory " + dir.string() + " exists and is not empty");
  fs::create_directories(dir);
  ::chmod(dir.c_str(), 0700);  // guest memory may hold anything the session saw
  // RAM of our own is saved beside the state, which then needs no compressing.
  m.state_file = start_.memory.copy ? SnapshotManifest::kRawStateFile : SnapshotManifest::kStateFile;
  fs::path state = dir / m.state_file;
  try {
    Frozen frozen = freeze_into(dir, m.state_file);
    m.save_seconds = frozen.pause_seconds;
    m.ram_digest = frozen.ram_digest;
  } catch (const Error&) {
    fs::remove_all(dir, ec);
    throw;
  }
  // The guest kernel keeps its FUSE node ids and open files across the resume; the new process must know them.
  std::vector<std::string> mount_states = on_io([&] { return mounts_->save_states(); });
  for (std::size_t i = 0; i < mount_states.size(); ++i)
    write_file_atomic(dir / session::SnapshotManifest::mount_state_file(i), mount_states[i],
                      fs::perms::owner_read | fs::perms::owner_write);
  // Memory mounts' files live in this process: they are saved beside the RAM.
  std::vector<std::string> mount_files = on_io([&] { return mounts_->save_files(); });
  for (std::size_t i = 0; i < mount_files.size(); ++i)
    if (!mount_files[i].empty())
      write_file_atomic(dir / session::SnapshotManifest::mount_files_file(i), mount_files[i],
                        fs::perms::owner_read | fs::perms::owner_write);

  // 3. The manifest, written last: a directory without one is no snapshot.
  describe_into(m);
  m.state_size = fs::file_size(state);
  m.state_sha256 = sha256_file_hex(state);
  if (!m.ram_digest.empty()) m.ram_stored_bytes = stored_bytes(dir / session::SnapshotManifest::kRamFile);
  write_file_atomic(dir / "manifest.json", m.to_json(), fs::perms::owner_read | fs::perms::owner_write);
  SnapshotInfo info = session::describe(session::LoadedSnapshot{dir, m});
  if (saved) {
    try {
      saved(info);
    } catch (const std::exception& e) {
      log().warn("snapshot {}: could not tell the requester: {}", m.id, e.what());
    }
  }

  // 4. The session continues, or ends here: its state now lives in the snapshot.
  if (keep_running) {
    qmp("cont");  // takes the disks back from the finished migration
    on_io([&] { guest_.control->abort_snapshot(); });
    log().info("snapshot {} written to {} ({} bytes, paused {:.2f} s); the session continues", m.id, dir.string(),
               m.state_size, m.save_seconds);
    return info;
  }
  life_.death_reason = "session saved as snapshot " + m.id + "; resume it with `gondolin bash --resume " + m.id + "`";
  on_io([&] { guest_.control->fail_all(Error(ErrorKind::Guest, life_.death_reason)); });
  stop_paused_guest();
  log().info("snapshot {} written to {} ({} bytes, paused {:.2f} s)", m.id, dir.string(), m.state_size, m.save_seconds);
  return info;
}

// ---- resume ----

void VmImpl::restore_revoked_secrets(std::vector<egress::RevokedSecret> revoked) {
  if (egress_ && !revoked.empty()) on_io([&] { egress_->restore_revoked_secrets(std::move(revoked)); });
}

Vm Vm::resume(const std::string& snapshot, VmOptions options) {
  init_logging_from_env();
  // The hashes of a compressed state and of the RAM image are checked while
  // QEMU starts (both are read again anyway; an uncompressed state is checked
  // before); a mismatch ends the VM before anyone can use it. The check names
  // the digest that does not match, or is empty.
  session::LoadedSnapshot snap = session::load_snapshot(snapshot, /*verify_state=*/false);
  const bool raw_state = snap.manifest.state_file == SnapshotManifest::kRawStateFile;
  auto hash_mismatch = std::async(std::launch::async, [&snap, raw_state]() -> std::string {
    // An uncompressed state is checked as it is read (below).
    if (!raw_state && sha256_file_hex(snap.dir / SnapshotManifest::kStateFile) != snap.manifest.state_sha256)
      return "the state's sha256";
    const RamDigest& ram = snap.manifest.ram_digest;
    if (ram.empty()) return "";
    if (vm::ram_image_digest(snap.dir / SnapshotManifest::kRamFile, ram.algorithm) != ram)
      return "the RAM image's " + ram.algorithm;
    return "";
  });
  const SnapshotManifest& m = snap.manifest;
  const std::string what = "snapshot " + m.id;
  const std::string damaged = "snapshot " + snap.dir.string() + " is damaged: ";
  if (m.agent_protocol != proto::kProtocolVersion)
    throw Error(ErrorKind::Usage, what + " was made by a gondolin with agent protocol " +
                                      std::to_string(m.agent_protocol) + "; this one speaks " +
                                      std::to_string(proto::kProtocolVersion));
  if (m.device_layout > vm::kDeviceLayout)
    throw Error(ErrorKind::Usage, what + " has device layout " + std::to_string(m.device_layout) +
                                      ", newer than this gondolin's " + std::to_string(vm::kDeviceLayout));
  Image image = snapshot_image(m, what);
  restore_options(m, options, what);
  std::vector<std::string> mount_states, mount_files;
  for (std::size_t i = 0; i < options.mounts.size(); ++i) {
    mount_states.push_back(read_mount_state(snap.dir / SnapshotManifest::mount_state_file(i), what));
    mount_files.push_back(read_mount_state(snap.dir / SnapshotManifest::mount_files_file(i), what,
                                           /*optional=*/true, kMaxMountFilesBytes));
  }
  Accel accel = m.accel == "kvm" ? Accel::Kvm : Accel::Tcg;
  vm::AccelChoice choice = vm::decide_accel(accel, vm::gather_accel_facts(false));
  auto impl = std::make_unique<VmImpl>(options);
  impl->add_spare_mount_slots(m.spare_mount_slots);
  impl->use_device_layout(m.device_layout);
  if (m.network.guest_mac) impl->keep_guest_mac(*m.network.guest_mac);
  impl->restore_mount_states(mount_states, mount_files, what);
  std::vector<egress::RevokedSecret> revoked;
  for (const auto& [name, placeholder] : m.revoked_placeholders) revoked.push_back({name, placeholder});
  try {
    impl->restore_revoked_secrets(std::move(revoked));
  } catch (const Error& e) {
    throw Error(ErrorKind::Usage, damaged + e.what());
  }
  if (options.rootfs_mode == RootfsMode::Cow) {
    fs::path disk = snap.dir / SnapshotManifest::kDiskFile;
    std::error_code ec;
    if (fs::file_size(disk, ec) != m.rootfs_size || ec)
      throw Error(ErrorKind::Usage,
                  damaged + "its root disk " + SnapshotManifest::kDiskFile + " is missing or has the wrong size");
    impl->restore_disk(disk);
  }
  // Only sized here: the RAM image is copied while QEMU starts (VmImpl::load_state_when_ram_is_in).
  if (!m.ram_digest.empty()) impl->resume_ram_image(snap.dir / SnapshotManifest::kRamFile);
  const vm::IncomingState state =
      raw_state ? vm::IncomingState::raw(snap.dir / SnapshotManifest::kRawStateFile, kMaxRawStateBytes, m.state_sha256,
                                         "snapshot " + snap.dir.string() + " is damaged")
                : vm::IncomingState::compressed(snap.dir / SnapshotManifest::kStateFile);
  try {
    impl->boot(image, choice.accel, "the snapshot was taken under " + m.accel, options.boot_timeout, state);
  } catch (const Error& e) {
    if (std::string bad = hash_mismatch.get(); !bad.empty())
      throw Error(ErrorKind::Usage, damaged + bad + " does not match");
    throw Error(e.kind(), e.what());
  }
  if (std::string bad = hash_mismatch.get(); !bad.empty()) {
    impl->close();
    throw Error(ErrorKind::Usage, damaged + bad + " does not match");
  }
  impl->register_session();
  return Vm(std::move(impl));
}

}  // namespace gondolin
