#include "vm/boot_template.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "proto/control_protocol.h"
#include "proto/wire.h"
#include "session/snapshot_manifest.h"
#include "util/files.h"
#include "util/logging.h"
#include "util/sha256.h"
#include "util/unique_fd.h"
#include "util/utc_time.h"
#include "vfs/mount_description.h"
#include "vm/incoming_state.h"
#include "vm/qemu_command.h"
#include "vm/qemu_version.h"
#include "vm/vm_impl.h"
#include "vm/vm_internals.h"

namespace gondolin::vm {
namespace fs = std::filesystem;
namespace {

// Bump when what a template holds changes in a way the key does not show.
constexpr int kTemplateFormat = 4;  // 4: the state uncompressed
constexpr const char* kMetaFile = "template.json";
constexpr const char* kRamFile = "ram";
constexpr std::uintmax_t kMaxMetaBytes = 64 * 1024;
// A resume is a fraction of a boot; one that takes this long is broken.
constexpr std::chrono::milliseconds kResumeLimit{60000};
constexpr std::size_t kKeptTemplates = 4;

using session::SnapshotManifest;
using vfs::FsTransport;

bool has_virtiofs(const std::vector<FsTransport>& slots) {
  return std::find(slots.begin(), slots.end(), FsTransport::Virtiofs) != slots.end();
}

fs::path templates_dir(const Image& image) { return image.dir / "templates"; }

bool cold_requested_by_env() {
  const char* v = std::getenv("GONDOLIN_COLD");
  return v && *v && std::string(v) != "0";
}

// QEMU's command line for `o` with every per-start value (descriptors,
// paths of the VM's own files, the MAC) replaced by a fixed name: two starts
// with equal lines restore into identical machines.
std::string normalized_qemu_line(const Image& image, const VmOptions& o, Accel accel,
                                 const std::vector<FsTransport>& slots) {
  QemuLaunch l = launch_for(image, o, accel);
  l.qemu_binary = "qemu";
  if (o.rootfs_mode == RootfsMode::Cow) l.writable_disk = "DISK";
  l.control_fd = 100;
  l.console_fd = 101;
  l.qmp_fd = 102;
  l.memory_file = "RAM";
  l.vhost_user = l.memory_file_shared = has_virtiofs(slots);
  // Devices in VmImpl's order: the NIC, then the file system slots.
  if (o.network.enabled) l.devices.push_back({network_device_args(o.machine, "MAC"), 103});
  for (std::size_t i = 0; i < slots.size(); ++i)
    l.devices.push_back(
        {mount_device_args(o.machine, proto::kFsPortPrefix + std::to_string(i), slots[i] == FsTransport::Virtiofs),
         static_cast<int>(104 + i)});
  std::string line;
  for (const auto& a : build_qemu_command(l).argv) line += a + '\n';
  return line;
}

std::string binary_identity(const fs::path& binary) {
  struct stat st {};
  if (::stat(binary.c_str(), &st) != 0) return binary.string();
  return binary.string() + " " + std::to_string(st.st_size) + " " + std::to_string(st.st_ino) + " " +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// "" if `dir` holds a template this start may resume, else what is wrong.
std::string check_template(const fs::path& dir, const TemplateKey& key, const VmOptions& o) {
  const std::string& qemu_line = key.qemu_line;
  std::error_code ec;
  auto meta_size = fs::file_size(dir / kMetaFile, ec);
  if (ec || meta_size > kMaxMetaBytes) return "has no readable template.json";
  auto meta = nlohmann::json::parse(read_file(dir / kMetaFile), nullptr, false);
  if (!meta.is_object() || meta.value("format", 0) != kTemplateFormat || meta.value("shape", "") != key.shape)
    return "was made by another gondolin or for another machine shape";
  if (meta.value("qemu_version", "") != qemu_line)
    return "was made by \"" + meta.value("qemu_version", std::string("?")) + "\", this host has \"" + qemu_line + "\"";
  const fs::path state = dir / kTemplateStateFile;
  const auto state_size = fs::file_size(state, ec);
  if (ec || state_size != meta.value("state_size", std::uint64_t{0})) return "has a truncated state file";
  if (state_size > kMaxTemplateStateBytes) return "has a state file too big to be a template's";
  if (sha256_file_hex(state) != meta.value("state_sha256", "")) return "has a damaged state file (sha256 mismatch)";
  if (fs::file_size(dir / kRamFile, ec) != std::uint64_t{o.memory_mib} << 20 || ec)
    return "has a RAM file of the wrong size";
  if (o.rootfs_mode == RootfsMode::Cow &&
      (fs::file_size(dir / SnapshotManifest::kDiskFile, ec) != o.rootfs_size_bytes || ec))
    return "has a root disk of the wrong size";
  return "";
}

// The template's directory if it exists and is sound; a damaged one is
// removed with one log line.
std::optional<fs::path> find_template(const Image& image, const TemplateKey& key, const VmOptions& o) {
  const fs::path dir = templates_dir(image) / key.id;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return std::nullopt;
  std::string why = check_template(dir, key, o);
  if (why.empty()) {
    ::utimensat(AT_FDCWD, dir.c_str(), nullptr, 0);  // its last use, for keep_recent_templates
    return dir;
  }
  log().warn("boot template {} {}; making it again", key.id, why);
  fs::remove_all(dir, ec);
  return std::nullopt;
}

// An image keeps its kKeptTemplates most recently used templates: shapes
// and QEMU versions come and go, and each template holds its RAM on disk.
void keep_recent_templates(const fs::path& root) {
  std::vector<std::pair<fs::file_time_type, fs::path>> dirs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory(ec) && e.path().extension().empty())
      dirs.emplace_back(fs::last_write_time(e.path(), ec), e.path());
  if (dirs.size() <= kKeptTemplates) return;
  std::sort(dirs.begin(), dirs.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t i = kKeptTemplates; i < dirs.size(); ++i) {
    log().info("removing boot template {} (unused the longest)", dirs[i].second.filename().string());
    fs::remove_all(dirs[i].second, ec);
    fs::remove(root / (dirs[i].second.filename().string() + ".lock"), ec);
  }
}

// What the template VM boots with: the start's shape, none of its identity.
VmOptions template_options(const VmOptions& o) {
  VmOptions t;
  t.image = o.image;
  t.memory_mib = o.memory_mib;
  t.cpus = o.cpus;
  t.accel = o.accel;
  t.machine = o.machine;
  t.qemu_binary = o.qemu_binary;
  t.rootfs_mode = o.rootfs_mode;
  t.rootfs_size_bytes = o.rootfs_size_bytes;
  t.network.enabled = o.network.enabled;
  t.network.mitm_ca_dir = o.network.mitm_ca_dir;
  t.register_session = false;
  t.boot_timeout = o.boot_timeout;
  return t;
}

nlohmann::json slot_names(const std::vector<FsTransport>& slots) {
  nlohmann::json out = nlohmann::json::array();
  for (FsTransport t : slots) out.push_back(vfs::transport_name(t));
  return out;
}

void write_meta(const fs::path& dir, const TemplateKey& key, const VmOptions& o,
                const std::vector<FsTransport>& slots) {
  const fs::path state = dir / kTemplateStateFile;
  nlohmann::json meta{{"format", kTemplateFormat},
                      {"key", key.id},
                      {"shape", key.shape},
                      {"qemu_version", key.qemu_line},
                      {"memory_mib", o.memory_mib},
                      {"cpus", o.cpus},
                      {"machine", o.machine},
                      {"rootfs_mode", to_string(o.rootfs_mode)},
                      {"network", o.network.enabled},
                      {"mount_slots", slot_names(slots)},
                      {"state_size", fs::file_size(state)},
                      {"state_sha256", sha256_file_hex(state)},
                      {"created", now_rfc3339()}};
  write_file_atomic(dir / kMetaFile, meta.dump(2) + "\n", fs::perms::owner_read | fs::perms::owner_write);
}

// The commands most starts run first, run once before the save: the guest's
// page cache then holds their binaries, libraries and shell start-up files,
// so a clone's first command reads nothing from its disk. (QEMU's translated
// code is not saved; the guest kernel's caches are.) A command the image
// lacks is skipped.
void warm_guest_caches(VmImpl& vm) {
  const std::vector<std::vector<std::string>> commands = {
      {"true"}, {"/bin/sh", "-lc", "true"}, {"bash", "-lc", "true"}};
  for (const auto& argv : commands) {
    try {
      Process p = vm.spawn(Command::argv(argv), {});
      while (p.read()) {}
      p.wait();
    } catch (const Error& e) {
      log().debug("boot template: warming with {} failed: {}", argv.front(), e.what());
    }
  }
}

// Boots the template VM and saves it; nullopt if another process holds the
// lock (it is making this template right now).
std::optional<fs::path> make_template(const Image& image, const TemplateKey& key, const VmOptions& o,
                                      const std::vector<FsTransport>& slots, const AccelChoice& accel,
                                      std::chrono::milliseconds timeout) {
  const fs::path root = templates_dir(image);
  // An image in a store this user cannot write (another user's, read-only
  // media) boots cold, quietly: that is a setup, not a fault.
  if (::access(image.dir.c_str(), W_OK) != 0 && !fs::exists(root)) {
    log().debug("booting cold: cannot write {} for a boot template", image.dir.string());
    return std::nullopt;
  }
  fs::create_directories(root);
  ::chmod(root.c_str(), 0700);  // template RAM may hold whatever the image's init_extra saw
  UniqueFd lock(::open((root / (key.id + ".lock")).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock)
    throw Error(ErrorKind::Io, "cannot create " + (root / (key.id + ".lock")).string() + ": " + std::strerror(errno));
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    log().info("boot template {} is being made by another gondolin; booting cold", key.id);
    return std::nullopt;
  }
  if (auto dir = find_template(image, key, o)) return dir;  // made while we looked
  const fs::path staging = root / (key.id + ".new");
  std::error_code ec;
  fs::remove_all(staging, ec);
  fs::create_directories(staging);
  ::chmod(staging.c_str(), 0700);
  log().info("making boot template {} ({} MiB, {} CPU(s), root {}, {} mount slot(s)); later starts resume it", key.id,
             o.memory_mib, o.cpus, to_string(o.rootfs_mode), slots.size());
  try {
    VmImpl vm(template_options(o));
    vm.add_spare_mount_slots(slots);
    vm.use_memory_file(staging / kRamFile, /*shared=*/true);
    vm.boot(image, accel.accel, accel.reason, timeout);
    // The CA is the user's, kept across sessions (its hash is in the key).
    if (vm.egress()) install_mitm_ca(vm, vm.egress()->ca_certificate_pem());
    warm_guest_caches(vm);
    vm.save_template(staging);
    ::chmod((staging / kRamFile).c_str(), 0600);
    write_meta(staging, key, o, slots);
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  const fs::path dir = root / key.id;
  fs::rename(staging, dir);
  keep_recent_templates(root);
  return dir;
}

}  // namespace

std::vector<FsTransport> template_mount_slots(const std::vector<FsTransport>& mounts) {
  if (mounts.empty() || mounts.size() > kTemplateMountSlots) return {};
  std::vector<FsTransport> slots = mounts;
  slots.resize(kTemplateMountSlots, has_virtiofs(mounts) ? FsTransport::Virtiofs : FsTransport::Serial);
  return slots;
}

std::string template_unsuitable(const VmOptions& o, const VmHooks& hooks) {
  if (o.cold) return "a cold start was asked for";
  if (cold_requested_by_env()) return "GONDOLIN_COLD is set";
  if (o.mounts.size() > kTemplateMountSlots)
    return "more than " + std::to_string(kTemplateMountSlots) + " file system mounts (a boot template has " +
           std::to_string(kTemplateMountSlots) + " slots)";
  if (!hooks.qemu_network_args.empty() || !hooks.qemu_extra_args.empty() || hooks.mtu)
    return "the VM has test or benchmark devices";
  return "";
}

TemplateKey template_key(const Image& image, const VmOptions& o, Accel accel, const std::string& mitm_ca_pem,
                         const std::vector<FsTransport>& slots) {
  const fs::path qemu = resolve_qemu_binary(o);
  TemplateKey key;
  key.qemu_line = qemu_version_line(qemu);
  nlohmann::json shape{{"format", kTemplateFormat},
                       {"agent_protocol", proto::kProtocolVersion},
                       {"image", image.manifest.id},
                       {"image_manifest_sha256", sha256_file_hex(image.dir / "manifest.json")},
                       {"qemu_version", key.qemu_line},
                       {"qemu_binary", binary_identity(qemu)},
                       {"qemu_line", normalized_qemu_line(image, o, accel, slots)},
                       {"rootfs_size", o.rootfs_mode == RootfsMode::Cow ? o.rootfs_size_bytes : 0},
                       {"mitm_ca_sha256", mitm_ca_pem.empty() ? "" : sha256_hex(mitm_ca_pem)}};
  key.shape = shape.dump();
  key.id = sha256_hex(key.shape).substr(0, 16);
  return key;
}

namespace {

// Why no template with these file system slots works on this QEMU ("" if one does).
std::string slots_unsupported(const std::vector<FsTransport>& slots, const VmOptions& o) {
  if (has_virtiofs(slots) && !binary_migrates_virtiofs(resolve_qemu_binary(o)))
    return "this QEMU cannot save virtio-fs state into a boot template";
  return "";
}

// The template for a VM about to start as `impl` with these slots, made if
// missing; no directory if another process is making it right now.
struct Located {
  TemplateKey key;
  std::optional<fs::path> dir;
};

Located locate_template(const Image& image, const VmOptions& o, VmImpl& impl, const std::vector<FsTransport>& slots,
                        const AccelChoice& accel, std::chrono::milliseconds timeout) {
  Located l;
  l.key = template_key(image, o, accel.accel, impl.egress() ? impl.egress()->ca_certificate_pem() : "", slots);
  l.dir = find_template(image, l.key, o);
  if (!l.dir) l.dir = make_template(image, l.key, o, slots, accel, timeout);
  return l;
}

}  // namespace

TemplateStart start_from_template(const Image& image, const VmOptions& o, const VmHooks& hooks,
                                  const AccelChoice& accel, std::chrono::milliseconds timeout) {
  if (std::string why = template_unsuitable(o, hooks); !why.empty()) {
    log().debug("booting cold: {}", why);
    return {};
  }
  auto impl = std::make_unique<VmImpl>(o, hooks);  // bad options throw here, as for a cold start
  // The mounts (their transports now resolved) take the first slots.
  const std::vector<FsTransport> slots = template_mount_slots(impl->mount_slots());
  Located l;
  try {
    if (std::string why = slots_unsupported(slots, o); !why.empty()) {
      log().debug("booting cold: {}", why);
      return {};
    }
    l = locate_template(image, o, *impl, slots, accel, timeout);
    if (!l.dir) return {};
    impl->add_spare_mount_slots(
        std::vector<FsTransport>(slots.begin() + static_cast<std::ptrdiff_t>(o.mounts.size()), slots.end()));
    impl->start_from_template(*l.dir / kRamFile,
                              o.rootfs_mode == RootfsMode::Cow ? *l.dir / SnapshotManifest::kDiskFile : fs::path());
  } catch (const std::exception& e) {
    return {nullptr, std::string("no boot template: ") + e.what()};
  }
  try {
    // check_template verified the digest.
    impl->boot(
        image, accel.accel, accel.reason, std::min(timeout, kResumeLimit),
        IncomingState::raw(*l.dir / kTemplateStateFile, kMaxTemplateStateBytes, "", "boot template " + l.key.id));
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove_all(*l.dir, ec);
    return {nullptr, "boot template " + l.key.id + " did not resume (" + e.what() + "); removed it"};
  }
  return {std::move(impl), ""};
}

std::string prepare_template(const Image& image, const VmOptions& o, const AccelChoice& accel,
                             std::chrono::milliseconds timeout) {
  if (std::string why = template_unsuitable(o, VmHooks{}); !why.empty()) return why;
  VmImpl impl(o);
  const std::vector<FsTransport> slots = template_mount_slots(impl.mount_slots());
  if (std::string why = slots_unsupported(slots, o); !why.empty()) return why;
  return locate_template(image, o, impl, slots, accel, timeout).dir ? "" : "another gondolin is making it now";
}

}  // namespace gondolin::vm
