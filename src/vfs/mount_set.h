// The file system mounts of one VM: checks their guest paths, makes one
// socket pair per mount (QEMU's end becomes the virtio-serial port
// "gondolin.fs<N>", or for a virtio-fs mount the vhost-user-fs device
// tagged so), runs a FUSE server for each (serial: on the VM's io thread;
// virtio-fs: on a thread per mount), and says what the agent must mount,
// parents before children.
//
// Slots: mount i uses channel "gondolin.fs<i>". A VM may also have spare
// slots after its mounts: channels the guest has but never mounts, served
// as an empty read-only directory. A boot template is made with spare slots
// only; a start from it fills the first ones with its own mounts, so its
// devices are the template's.
#pragma once

#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gondolin/vfs.h"
#include "proto/control_protocol.h"
#include "proto/mount_messages.h"
#include "util/unique_fd.h"

namespace gondolin::vfs {

class FuseChannel;
class FuseServer;
namespace vhost {
class VirtioFsServer;
}

struct MountPort {
  std::string port_name;  // also the virtio-fs tag
  FsTransport transport = FsTransport::Serial;
  UniqueFd qemu_end;  // for QEMU to inherit; close it once QEMU has started
};

class MountSet {
 public:
  static constexpr std::size_t kMaxMounts = 16;  // virtio-serial has 31 ports; the control port is one

  // Mounts with FsTransport::Auto get `auto_transport` (Serial or Virtiofs).
  // Throws gondolin::Error (Usage) for a bad guest path, a duplicate or a missing provider.
  explicit MountSet(std::vector<Mount> mounts, FsTransport auto_transport = FsTransport::Serial);
  ~MountSet();
  MountSet(const MountSet&) = delete;
  MountSet& operator=(const MountSet&) = delete;

  bool empty() const { return mounts_.empty(); }
  std::size_t size() const { return mounts_.size(); }
  const Mount& mount(std::size_t i) const { return mounts_[i]; }
  const std::vector<Mount>& mounts() const { return mounts_; }
  // Some mount takes writes: the guest may hold dirty data for it until it syncs.
  bool writable() const;
  // Some slot (mount or spare) uses virtio-fs: QEMU must share guest RAM with us.
  bool uses_virtiofs() const;

  // Before create_ports(): one spare slot per entry (Serial or Virtiofs)
  // after the mounts. Throws gondolin::Error (Usage) past kMaxMounts slots.
  void add_spare_slots(const std::vector<FsTransport>& transports);
  const std::vector<FsTransport>& spare_slots() const { return spare_transports_; }
  // The transport of every slot: the mounts', then the spares'.
  std::vector<FsTransport> slot_transports() const;

  // For a resume: loads each server's saved state (FuseServer::export_state),
  // in mount order, re-opening files the guest holds open. Call before
  // start(). A virtio-fs mount's state is empty here: it travels in QEMU's
  // own state (VirtioFsServer). Throws gondolin::Error (Usage) if a state
  // does not fit.
  // `files` are the mounts' saved files (save_files), loaded first.
  void restore_states(const std::vector<std::string>& states, const std::vector<std::string>& files,
                      const std::string& origin);
  // Io thread, VM paused: every mount's state, in mount order ("" for virtio-fs).
  std::vector<std::string> save_states() const;
  // VM paused: the files of every mount whose provider keeps them in this
  // process (vfs::memory), in mount order ("" for the others).
  std::vector<std::string> save_files() const;
  // Any thread, after start(): "" if a snapshot can save every mount, else
  // a sentence naming the first virtio-fs mount whose state QEMU cannot carry.
  std::string unsavable_reason() const;
  // Any thread: why a virtio-fs mount refused the state QEMU loaded ("" if none did).
  std::string state_error() const;
  // Io thread: no FUSE request or reply is in flight on any mount.
  bool quiet() const;

  // Makes the socket pairs, one per slot; call once, before start().
  std::vector<MountPort> create_ports();
  // Io thread: serves every mount. A mount whose stream or rings the guest
  // breaks stops alone (one warning naming it); the VM goes on.
  void start(boost::asio::io_context& io);
  proto::MountRequest request(std::size_t i) const;
  // Io thread: stops serving (logs request counts at debug level).
  void close();

 private:
  std::string label(std::size_t i) const;             // "fs0 (/work)", "fs3 (spare)"
  std::string slot_description(std::size_t i) const;  // "the mount at /work", "spare mount slot 3"

  std::vector<Mount> mounts_;
  std::vector<FsTransport> spare_transports_;
  std::vector<UniqueFd> host_ends_;                               // invalid for virtio-fs mounts
  std::vector<std::unique_ptr<FuseServer>> servers_;              // per slot, until start() hands them to channels
  std::vector<std::shared_ptr<FuseChannel>> channels_;            // serial slots, in slot order
  std::vector<std::unique_ptr<vhost::VirtioFsServer>> virtiofs_;  // virtio-fs slots, made by create_ports()
};

}  // namespace gondolin::vfs
