// The back-end half of the vhost-user protocol, independent of the device:
// feature negotiation, the guest memory table, each ring's size, addresses,
// base index, kick/call fds and enable state, the dirty log of a live
// migration, and the transfer of the device's own state for a migration.
// Pure message in, reply out (one handler per request, in a table); the
// device (virtio_fs_server) owns the socket and the thread.
//
// Offered: VIRTIO_F_VERSION_1, VHOST_USER_F_PROTOCOL_FEATURES, VHOST_F_LOG_ALL
// and, as protocol features, MQ, LOG_SHMFD, REPLY_ACK and (when the device
// can save its state) DEVICE_STATE. Nothing else (no indirect descriptors,
// no event index, no config space). A request we do not implement is
// refused with a one-line error and ends the connection.
//
// Migration (QEMU hw/virtio/vhost.c, vhost-user.rst "Migration"): QEMU
// stops the rings (GET_VRING_BASE, which we answer only once every request
// taken from the ring is answered: we serve synchronously), then moves the
// device state through a pipe: SET_DEVICE_STATE_FD, the bytes, and
// CHECK_DEVICE_STATE, whose answer says whether the state was taken.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/unique_fd.h"
#include "vfs/vhost/dirty_log.h"
#include "vfs/vhost/guest_memory.h"
#include "vfs/vhost/split_queue.h"
#include "vfs/vhost/state_transfer.h"
#include "vfs/vhost/vhost_user_message.h"

namespace gondolin::vfs::vhost {

inline constexpr std::uint64_t kFeatureLogAll = 1ull << 26;
inline constexpr std::uint64_t kFeatureProtocolFeatures = 1ull << 30;
inline constexpr std::uint64_t kFeatureVersion1 = 1ull << 32;
inline constexpr std::uint64_t kProtocolFeatureMq = 1ull << 0;
inline constexpr std::uint64_t kProtocolFeatureLogShmfd = 1ull << 1;
inline constexpr std::uint64_t kProtocolFeatureReplyAck = 1ull << 3;
inline constexpr std::uint64_t kProtocolFeatureDeviceState = 1ull << 19;
inline constexpr std::uint32_t kVringFlagLog = 1;  // SET_VRING_ADDR: log the used ring

// How the device saves and restores its own state (the FUSE session).
struct DeviceStateHooks {
  std::function<std::string()> save;                  // the state, as bytes
  std::function<std::string(std::string_view)> load;  // "" or why the bytes are refused
  std::size_t max_bytes = 512u << 20;                 // the largest state a load accepts
};

class VhostUserBackend {
 public:
  // queue_count: rings of the device; max_request_bytes bounds one chain's
  // readable part. Without hooks, DEVICE_STATE is not offered.
  VhostUserBackend(std::uint32_t queue_count, std::uint64_t max_request_bytes, DeviceStateHooks hooks = {});

  struct Outcome {
    std::vector<std::uint8_t> reply;  // whole message to send back; empty: none
    std::string error;                // non-empty: refuse and end the connection
  };
  Outcome handle(Message message);

  std::uint32_t queue_count() const { return static_cast<std::uint32_t>(rings_.size()); }
  // The ring is started (addresses, memory and kick fd known) and enabled.
  bool serving(std::uint32_t index) const;
  SplitQueue& queue(std::uint32_t index) { return rings_[index].queue; }
  const SplitQueue& queue(std::uint32_t index) const { return rings_[index].queue; }
  int kick_fd(std::uint32_t index) const { return rings_[index].kick.get(); }
  // Interrupts the guest for ring `index` unless it asked not to be.
  void notify_guest(std::uint32_t index);
  // The device wrote the first `written` bytes of the chain's writable part:
  // marks them in the dirty log while the front-end asks for logging.
  void log_written(const DescriptorChain& chain, std::uint32_t written) const;
  // The front-end accepted DEVICE_STATE: it can migrate our state.
  bool state_migration_negotiated() const { return protocol_features_ & kProtocolFeatureDeviceState; }
  // Why the last state transfer failed ("" if it did not).
  const std::string& state_error() const { return state_error_; }

 private:
  struct Ring {
    std::uint32_t size = 0;
    std::optional<VringAddr> addr;
    std::uint16_t base = 0;
    UniqueFd kick, call, err;
    bool enabled = false;
    SplitQueue queue;
  };
  using Reply = std::optional<std::vector<std::uint8_t>>;
  // Handles one request; returns why it is refused, or "".
  using Handler = std::string (VhostUserBackend::*)(Message& m, Reply& reply);
  struct HandlerEntry {
    Request request;
    Handler handler;
  };
  static const HandlerEntry kHandlers[];

  std::string get_features(Message& m, Reply& reply);
  std::string set_features(Message& m, Reply& reply);
  std::string get_protocol_features(Message& m, Reply& reply);
  std::string set_protocol_features(Message& m, Reply& reply);
  std::string set_owner(Message& m, Reply& reply);
  std::string reset_owner(Message& m, Reply& reply);
  std::string get_queue_num(Message& m, Reply& reply);
  std::string set_mem_table(Message& m, Reply& reply);
  std::string set_log_base(Message& m, Reply& reply);
  std::string set_log_fd(Message& m, Reply& reply);
  std::string set_vring_num(Message& m, Reply& reply);
  std::string set_vring_base(Message& m, Reply& reply);
  std::string set_vring_addr(Message& m, Reply& reply);
  std::string get_vring_base(Message& m, Reply& reply);
  std::string set_vring_kick(Message& m, Reply& reply);
  std::string set_vring_call(Message& m, Reply& reply);
  std::string set_vring_err(Message& m, Reply& reply);
  std::string set_vring_enable(Message& m, Reply& reply);
  std::string set_device_state_fd(Message& m, Reply& reply);
  std::string check_device_state(Message& m, Reply& reply);

  std::string set_vring_fd(const Message& m, UniqueFd Ring::*which, bool fd_required);
  // Starts ring `index` if everything it needs is there; error if its addresses are bad.
  std::string try_start(std::uint32_t index);
  // A ring of that index that is not running, or why not.
  std::string stopped_ring(std::uint64_t index) const;
  std::optional<std::uint32_t> ring_index(std::uint64_t index) const;
  bool logging() const { return (features_ & kFeatureLogAll) && log_.mapped(); }
  void update_used_logging();
  std::uint64_t offered_protocol_features() const;
  void reset();

  std::uint64_t max_request_bytes_;
  DeviceStateHooks hooks_;
  std::vector<Ring> rings_;
  GuestMemory memory_;
  DirtyLog log_;
  StateTransfer transfer_;
  bool transfer_started_ = false;
  std::string state_error_;
  std::uint64_t features_ = 0;
  std::uint64_t protocol_features_ = 0;
};

}  // namespace gondolin::vfs::vhost
