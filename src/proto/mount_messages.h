// Control-channel messages that set up host-served mounts in the guest.
// Header-only, shared with the agent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/file_messages.h"  // kMaxPathLength
#include "proto/message_fields.h"
#include "proto/wire.h"

namespace gondolin::proto {

// ---- File system mounts ---------------------------------------------------------

inline constexpr std::uint32_t kMountReadOnly = 1u << 0;  // the guest mounts it read-only too
// virtio-fs instead of the FUSE relay: port_name is then the device's tag.
// (An older agent refuses the unknown flag, so the mismatch is one clear error.)
inline constexpr std::uint32_t kMountVirtiofs = 1u << 1;
inline constexpr std::uint32_t kMountKnownFlags = kMountReadOnly | kMountVirtiofs;
inline constexpr char kFsPortPrefix[] = "gondolin.fs";

// The host's last message on a serial mount port it gives up on (the guest
// broke the request stream): a FUSE notification header (unique 0) whose
// code no kernel defines. The forwarder keeps it from the kernel and from
// then on answers every request of that mount with EIO itself.
inline constexpr std::int32_t kFuseNotifyMountFailed = 0x67646c6e;  // "gdln"

// The agent mounts FUSE at guest_path and relays between /dev/fuse and the
// named port, whose other end is the host's FUSE server for this mount.
struct MountRequest {
  std::string port_name;   // "gondolin.fs<N>": the virtio-serial port, or the virtio-fs tag
  std::string guest_path;  // absolute, created if missing
  std::uint32_t flags = 0;
  std::uint32_t max_read = 0;  // bytes per FUSE read (also the guest's readahead)

  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.text(m.port_name, 64);
    f.text(m.guest_path, kMaxPathLength);
    f.u32(m.flags);
    f.u32(m.max_read);
  }
  bool valid() const {
    return port_name.rfind(kFsPortPrefix, 0) == 0 && !guest_path.empty() && guest_path[0] == '/' &&
           (flags & ~kMountKnownFlags) == 0 && max_read >= 4096 && max_read <= (1u << 24);
  }
  GONDOLIN_WIRE_MESSAGE(MountRequest)
};

struct MountResultMsg {
  std::int32_t error_number = 0;  // 0: mounted
  std::string message;            // which step failed
  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.i32(m.error_number);
    f.blob(m.message, 1024);
  }
  bool valid() const { return error_number >= 0 && error_number <= 4095; }
  GONDOLIN_WIRE_MESSAGE(MountResultMsg)
};

}  // namespace gondolin::proto
