#include "vfs/mount_set.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "config/mount_rules.h"
#include "gondolin/error.h"
#include "util/logging.h"
#include "vfs/fuse_channel.h"
#include "vfs/fuse_server.h"
#include "vfs/savable_contents.h"
#include "vfs/vhost/virtio_fs_server.h"

#include <boost/asio/post.hpp>

namespace gondolin::vfs {

MountSet::MountSet(std::vector<Mount> mounts, FsTransport auto_transport) : mounts_(std::move(mounts)) {
  if (auto_transport == FsTransport::Auto) auto_transport = FsTransport::Serial;
  if (mounts_.size() > kMaxMounts)
    throw Error(ErrorKind::Usage,
                "too many mounts (" + std::to_string(mounts_.size()) + "); at most " + std::to_string(kMaxMounts));
  std::set<std::string> seen;
  for (auto& m : mounts_) {
    m.guest_path = config::normalize_mount_path(m.guest_path, "mount");
    if (!m.provider) throw Error(ErrorKind::Usage, "mount " + m.guest_path + " has no provider");
    if (!seen.insert(m.guest_path).second) throw Error(ErrorKind::Usage, "two mounts at " + m.guest_path);
    if (m.options.transport == FsTransport::Auto) m.options.transport = auto_transport;
  }
  // Parents first: a nested mount point is created inside its parent mount.
  std::stable_sort(mounts_.begin(), mounts_.end(), [](const Mount& a, const Mount& b) {
    return std::count(a.guest_path.begin(), a.guest_path.end(), '/') <
           std::count(b.guest_path.begin(), b.guest_path.end(), '/');
  });
  for (const auto& m : mounts_) servers_.push_back(std::make_unique<FuseServer>(m.provider, m.options));
}

void MountSet::restore_states(const std::vector<std::string>& states, const std::vector<std::string>& files,
                              const std::string& origin) {
  if (states.size() != mounts_.size() || files.size() != mounts_.size())
    throw Error(ErrorKind::Usage, origin + ": has file system state for " + std::to_string(states.size()) +
                                      " mounts, but describes " + std::to_string(mounts_.size()));
  // Files first: re-opening the guest's open files needs them.
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (files[i].empty()) continue;
    auto* savable = dynamic_cast<SavableContents*>(mounts_[i].provider.get());
    std::string why = savable ? savable->load_contents(files[i]) : "the mount keeps no files of its own";
    if (!why.empty())
      throw Error(ErrorKind::Usage,
                  origin + ": the saved files of the mount at " + mounts_[i].guest_path + " are damaged: " + why);
  }
  for (std::size_t i = 0; i < states.size(); ++i) {
    const bool virtiofs = mounts_[i].options.transport == FsTransport::Virtiofs;
    if (virtiofs && states[i].empty()) continue;  // QEMU brings it to the device
    if (virtiofs || !servers_[i]->import_state(states[i]))
      throw Error(ErrorKind::Usage,
                  origin + ": the file system state of the mount at " + mounts_[i].guest_path + " is damaged");
  }
}

std::vector<std::string> MountSet::save_states() const {
  std::vector<std::string> out;
  std::size_t next_channel = 0;
  for (std::size_t i = 0; i < mounts_.size(); ++i) {
    if (mounts_[i].options.transport == FsTransport::Virtiofs)
      out.emplace_back();
    else if (!servers_.empty() && servers_[i])
      out.push_back(servers_[i]->export_state());  // never started
    else
      out.push_back(channels_.at(next_channel++)->server().export_state());
  }
  return out;
}

std::vector<std::string> MountSet::save_files() const {
  std::vector<std::string> out;
  for (const auto& m : mounts_) {
    auto* savable = dynamic_cast<const SavableContents*>(m.provider.get());
    out.push_back(savable ? savable->save_contents() : std::string());
  }
  return out;
}

std::string MountSet::unsavable_reason() const {
  const std::vector<FsTransport> slots = slot_transports();
  for (std::size_t i = 0, next = 0; i < slots.size(); ++i) {
    if (slots[i] != FsTransport::Virtiofs) continue;
    if (next < virtiofs_.size() && !virtiofs_[next++]->state_migratable())
      return slot_description(i) +
             " uses virtio-fs, and this QEMU cannot save a vhost-user-fs back-end's state (QEMU 8.2 and later can)";
  }
  return "";
}

std::string MountSet::state_error() const {
  const std::vector<FsTransport> slots = slot_transports();
  for (std::size_t i = 0, next = 0; i < slots.size(); ++i) {
    if (slots[i] != FsTransport::Virtiofs || next >= virtiofs_.size()) continue;
    if (std::string e = virtiofs_[next++]->state_error(); !e.empty()) return slot_description(i) + ": " + e;
  }
  return "";
}

bool MountSet::uses_virtiofs() const {
  const std::vector<FsTransport> slots = slot_transports();
  return std::find(slots.begin(), slots.end(), FsTransport::Virtiofs) != slots.end();
}

void MountSet::add_spare_slots(const std::vector<FsTransport>& transports) {
  if (mounts_.size() + spare_transports_.size() + transports.size() > kMaxMounts)
    throw Error(ErrorKind::Usage, "too many mount slots; at most " + std::to_string(kMaxMounts));
  for (FsTransport t : transports) {
    if (t != FsTransport::Serial && t != FsTransport::Virtiofs)
      throw Error(ErrorKind::Internal, "a spare mount slot needs a concrete transport");
    MountOptions o;
    o.transport = t;
    // Never mounted by the agent; a guest that mounts one anyway sees nothing.
    servers_.push_back(std::make_unique<FuseServer>(read_only(memory()), o));
    spare_transports_.push_back(t);
  }
}

std::vector<FsTransport> MountSet::slot_transports() const {
  std::vector<FsTransport> out;
  for (const auto& m : mounts_) out.push_back(m.options.transport);
  out.insert(out.end(), spare_transports_.begin(), spare_transports_.end());
  return out;
}

bool MountSet::quiet() const {
  return std::all_of(channels_.begin(), channels_.end(), [](const auto& c) { return c->quiet(); });
}

MountSet::~MountSet() = default;

bool MountSet::writable() const {
  return std::any_of(mounts_.begin(), mounts_.end(), [](const Mount& m) { return !m.provider->read_only(); });
}

std::vector<MountPort> MountSet::create_ports() {
  std::vector<MountPort> out;
  host_ends_.clear();
  virtiofs_.clear();
  const std::vector<FsTransport> slots = slot_transports();
  for (std::size_t i = 0; i < slots.size(); ++i) {
    const std::string name = std::string(proto::kFsPortPrefix) + std::to_string(i);
    if (slots[i] == FsTransport::Virtiofs) {
      // servers_[i] stays null: the virtio-fs server owns it from here on.
      auto server = std::make_unique<vhost::VirtioFsServer>(std::move(servers_[i]), label(i));
      UniqueFd qemu_end = server->create_socket();
      virtiofs_.push_back(std::move(server));
      host_ends_.emplace_back();
      out.push_back(MountPort{name, FsTransport::Virtiofs, std::move(qemu_end)});
      continue;
    }
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      throw Error(ErrorKind::Io, std::string("socketpair: ") + std::strerror(errno));
    host_ends_.emplace_back(sv[0]);
    out.push_back(MountPort{name, FsTransport::Serial, UniqueFd(sv[1])});
  }
  return out;
}

void MountSet::start(boost::asio::io_context& io) {
  // A mount that fails (the guest broke its stream or rings) logs one warning
  // naming itself and stops; the VM and the other mounts go on.
  for (auto& server : virtiofs_) server->start(nullptr);
  for (std::size_t i = 0; i < host_ends_.size(); ++i) {
    if (!host_ends_[i]) continue;  // virtio-fs
    auto channel = std::make_shared<FuseChannel>(io, std::move(host_ends_[i]), std::move(servers_[i]), label(i));
    channel->start();
    channels_.push_back(std::move(channel));
  }
  host_ends_.clear();
  servers_.clear();
}

proto::MountRequest MountSet::request(std::size_t i) const {
  proto::MountRequest r;
  r.port_name = std::string(proto::kFsPortPrefix) + std::to_string(i);
  r.guest_path = mounts_[i].guest_path;
  r.flags = mounts_[i].provider->read_only() ? proto::kMountReadOnly : 0;
  if (mounts_[i].options.transport == FsTransport::Virtiofs) r.flags |= proto::kMountVirtiofs;
  r.max_read = fuse::kMaxIo;
  return r;
}

void MountSet::close() {
  for (auto& c : channels_) {
    log().debug("vfs {}: {}", c->label(), c->describe_counts());
    c->close();
  }
  channels_.clear();
  for (auto& server : virtiofs_) {
    server->stop();
    log().debug("vfs {}: {}", server->label(), server->describe_counts());
  }
  virtiofs_.clear();
}

std::string MountSet::slot_description(std::size_t i) const {
  return i < mounts_.size() ? "the mount at " + mounts_[i].guest_path : "spare mount slot " + std::to_string(i);
}

std::string MountSet::label(std::size_t i) const {
  return "fs" + std::to_string(i) + " (" + (i < mounts_.size() ? mounts_[i].guest_path : "spare") + ")";
}

}  // namespace gondolin::vfs
