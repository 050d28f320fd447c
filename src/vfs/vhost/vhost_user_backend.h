// The back-end half of the vhost-user protocol, independent of the device:
// feature negotiation, the guest memory table, and each ring's size,
// addresses, base index, kick/call fds and enable state. Pure message in,
// reply out; the device (virtio_fs_server) owns the socket and the thread.
//
// Offered: VIRTIO_F_VERSION_1, VHOST_USER_F_PROTOCOL_FEATURES and, as
// protocol features, MQ and REPLY_ACK. Nothing else (no indirect
// descriptors, no event index, no logging/migration, no config space).
// A request we do not implement is refused with a one-line error and ends
// the connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/unique_fd.h"
#include "vfs/vhost/guest_memory.h"
#include "vfs/vhost/split_queue.h"
#include "vfs/vhost/vhost_user_message.h"

namespace gondolin::vfs::vhost {

inline constexpr std::uint64_t kFeatureProtocolFeatures = 1ull << 30;
inline constexpr std::uint64_t kFeatureVersion1 = 1ull << 32;
inline constexpr std::uint64_t kProtocolFeatureMq = 1ull << 0;
inline constexpr std::uint64_t kProtocolFeatureReplyAck = 1ull << 3;

class VhostUserBackend {
 public:
  // queue_count: rings of the device; max_request_bytes bounds one chain's readable part.
  VhostUserBackend(std::uint32_t queue_count, std::uint64_t max_request_bytes);

  struct Outcome {
    std::vector<std::uint8_t> reply;  // whole message to send back; empty: none
    std::string error;                // non-empty: refuse and end the connection
  };
  Outcome handle(Message message);

  std::uint32_t queue_count() const { return static_cast<std::uint32_t>(rings_.size()); }
  // The ring is started (addresses, memory and kick fd known) and enabled.
  bool serving(std::uint32_t index) const;
  SplitQueue& queue(std::uint32_t index) { return rings_[index].queue; }
  int kick_fd(std::uint32_t index) const { return rings_[index].kick.get(); }
  // Interrupts the guest for ring `index` unless it asked not to be.
  void notify_guest(std::uint32_t index);

 private:
  struct Ring {
    std::uint32_t size = 0;
    std::optional<VringAddr> addr;
    std::uint16_t base = 0;
    UniqueFd kick, call, err;
    bool enabled = false;
    SplitQueue queue;
  };
  std::string set_vring_fd(const Message& m, UniqueFd Ring::*which, bool fd_required);
  // Starts ring `index` if everything it needs is there; error if its addresses are bad.
  std::string try_start(std::uint32_t index);
  std::optional<std::uint32_t> ring_index(std::uint64_t index) const;
  void reset();

  std::uint64_t max_request_bytes_;
  std::vector<Ring> rings_;
  GuestMemory memory_;
  std::uint64_t features_ = 0;
  std::uint64_t protocol_features_ = 0;
};

}  // namespace gondolin::vfs::vhost
