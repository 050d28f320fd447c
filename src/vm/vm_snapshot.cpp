// Snapshots: the agent goes quiet at a frame boundary, QEMU pauses and
// migrates its RAM and device state through zstd into a file, and the session
// stops. Resume starts QEMU with the same machine and devices, paused, loads
// that state, continues, and tells the agent it has a new host.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "gondolin/version.h"
#include "session/snapshot_manifest.h"
#include "session/snapshot_store.h"
#include "util/files.h"
#include "util/logging.h"
#include "util/random_hex.h"
#include "util/sha256.h"
#include "util/subprocess.h"
#include "vfs/mount_description.h"
#include "vm/vm_impl.h"

namespace gondolin {
namespace fs = std::filesystem;
namespace {

constexpr std::chrono::seconds kPrepareTimeout{10};
constexpr std::chrono::seconds kMigrateTimeout{300};
// Pauses tried before giving up on catching every mount between two FUSE requests.
constexpr int kQuietMountTries = 50;

}  // namespace

nlohmann::json VmImpl::qmp(const std::string& command, nlohmann::json arguments) {
  std::promise<std::pair<bool, nlohmann::json>> reply;
  auto fut = reply.get_future();
  boost::asio::post(io_, [&] {
    if (!qmp_) return reply.set_value({false, nlohmann::json{{"error", {{"desc", "no QMP connection"}}}}});
    qmp_->execute(command, std::move(arguments),
                  [&reply](bool ok, const nlohmann::json& r) { reply.set_value({ok, r}); });
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
  // A template's RAM is its file: the state leaves it out. A VM resumed from
  // a template maps that file privately, or has its own copy: a snapshot of
  // it carries all of its RAM, like any other (the capability its start set
  // is turned off again).
  if (!memory_file_.path.empty() || memory_file_.copy)
    qmp("migrate-set-capabilities",
        {{"capabilities", {{{"capability", "x-ignore-shared"}, {"state", memory_file_.shared}}}}});
  // zstd -1 keeps the pause short; zero pages are already elided by QEMU.
  // The guest's RAM holds its keys, tokens and files: the file is the
  // owner's alone whatever our umask (zstd creates it after `umask 077`).
  qmp("migrate", {{"uri", "exec:umask 077 && exec zstd -q -1 -T0 -o " + shell_quote(state_file.string())}});
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

double VmImpl::freeze_into(const fs::path& dir) {
  // 1. The agent finishes the frame it is writing and goes silent.
  std::promise<void> ready;
  auto ready_future = ready.get_future();
  on_io([&] { control_->prepare_snapshot([&ready] { ready.set_value(); }); });
  if (ready_future.wait_for(kPrepareTimeout) != std::future_status::ready) {
    on_io([&] { control_->abort_snapshot(); });
    throw Error(ErrorKind::Guest, "the guest agent did not get ready for the snapshot");
  }
  // 2. QEMU pauses and writes RAM + device state.
  auto started = std::chrono::steady_clock::now();
  try {
    save_state(dir / session::SnapshotManifest::kStateFile);
    // The migration flushed the disk and QEMU writes nothing until `cont`:
    // the copy matches the memory image.
    if (disk_) disk_->copy_to(dir / session::SnapshotManifest::kDiskFile);
  } catch (const Error&) {
    try {
      qmp("cont");
    } catch (const Error&) {
    }
    on_io([&] { control_->abort_snapshot(); });
    throw;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

void VmImpl::save_template(const fs::path& dir) {
  require_running();
  if (memory_file_.path.empty() || !memory_file_.shared || !mounts_->empty())
    throw Error(ErrorKind::Internal, "a boot template needs shared file-backed RAM and no mounts");
  freeze_into(dir);
  death_reason_ = "saved as a boot template";
  on_io([&] { control_->fail_all(Error(ErrorKind::Guest, death_reason_)); });
  kill_and_wait();
}

SnapshotInfo VmImpl::snapshot(const fs::path& requested_dir, bool keep_running,
                              const std::function<void(const SnapshotInfo&)>& saved) {
  require_running();
  session::SnapshotManifest m;
  // Refused before anything is paused: every mount must be rebuildable on resume.
  m.mounts_json = vfs::describe_mounts(mounts_->mounts());
  for (vfs::FsTransport t : mounts_->spare_slots())
    m.spare_mount_slots.push_back(t == vfs::FsTransport::Virtiofs ? "virtiofs" : "serial");
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
  fs::path state = dir / session::SnapshotManifest::kStateFile;
  try {
    m.save_seconds = freeze_into(dir);
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
  m.created = now_rfc3339();
  m.image_id = image_.manifest.id;
  m.image_name = image_.display_name();
  m.image_manifest_sha256 = sha256_file_hex(image_.dir / "manifest.json");
  m.memory_mib = opts_.memory_mib;
  m.cpus = opts_.cpus;
  m.machine = opts_.machine;
  m.accel = to_string(info_.accel);
  m.hostname = opts_.hostname;
  m.rootfs_mode = to_string(opts_.rootfs_mode);
  m.rootfs_size = disk_ ? opts_.rootfs_size_bytes : 0;
  m.qemu_version = qemu_version_line(resolve_qemu_binary(opts_));
  m.gondolin_version = kVersion;
  m.agent_protocol = proto::kProtocolVersion;
  m.state_size = fs::file_size(state);
  m.state_sha256 = sha256_file_hex(state);
  const NetworkOptions& n = opts_.network;
  std::vector<std::string> ssh_hosts;
  for (const auto& h : n.ssh.allowed_hosts) ssh_hosts.push_back(h.host + ":" + std::to_string(h.port));
  nlohmann::json net{{"enabled", n.enabled},
                     {"allow_hosts", n.allow_hosts},
                     {"allow_all_hosts", n.allow_all_hosts},
                     {"dns", n.dns == DnsMode::Synthetic ? "synthetic" : n.dns == DnsMode::Trusted ? "trusted" : "open"},
                     {"ssh_allow_hosts", ssh_hosts}};
  m.network_json = net.dump();
  for (const auto& s : opts_.network.secrets) {
    m.secret_names.push_back(s.name);
    for (const auto& [k, v] : opts_.env)
      if (k == s.name) m.secret_placeholders.emplace_back(k, v);
  }
  // The base environment without the placeholders: resume re-adds them from
  // secret_placeholders, paired with the values the resumer supplies.
  m.env.clear();
  for (const auto& kv : opts_.env)
    if (std::find(m.secret_names.begin(), m.secret_names.end(), kv.first) == m.secret_names.end()) m.env.push_back(kv);
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
    on_io([&] { control_->abort_snapshot(); });
    log().info("snapshot {} written to {} ({} bytes, paused {:.2f} s); the session continues", m.id, dir.string(),
               m.state_size, m.save_seconds);
    return info;
  }
  death_reason_ = "session saved as snapshot " + m.id + "; resume it with `gondolin bash --resume " + m.id + "`";
  on_io([&] { control_->fail_all(Error(ErrorKind::Guest, death_reason_)); });
  kill_and_wait();
  log().info("snapshot {} written to {} ({} bytes, paused {:.2f} s)", m.id, dir.string(), m.state_size, m.save_seconds);
  return info;
}

}  // namespace gondolin
