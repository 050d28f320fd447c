// vhost-user wire format (QEMU docs/interop/vhost-user.rst): a 12-byte
// header {request, flags, size}, a payload of `size` bytes, and file
// descriptors passed alongside with SCM_RIGHTS. Only what we implement is
// named here; payload decoders check sizes exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "util/unique_fd.h"
#include "vfs/vhost/guest_memory.h"

namespace gondolin::vfs::vhost {

enum class Request : std::uint32_t {
  GetFeatures = 1,
  SetFeatures = 2,
  SetOwner = 3,
  ResetOwner = 4,
  SetMemTable = 5,
  SetLogBase = 6,
  SetLogFd = 7,
  SetVringNum = 8,
  SetVringAddr = 9,
  SetVringBase = 10,
  GetVringBase = 11,
  SetVringKick = 12,
  SetVringCall = 13,
  SetVringErr = 14,
  GetProtocolFeatures = 15,
  SetProtocolFeatures = 16,
  GetQueueNum = 17,
  SetVringEnable = 18,
  SetDeviceStateFd = 42,
  CheckDeviceState = 43,
};
const char* request_name(std::uint32_t request);

inline constexpr std::size_t kHeaderSize = 12;
inline constexpr std::uint32_t kMaxPayload = 4096;  // the largest we accept (a memory table is 264)
inline constexpr std::size_t kMaxFdsPerMessage = 8;
inline constexpr std::uint32_t kFlagVersion = 0x1;
inline constexpr std::uint32_t kFlagVersionMask = 0x3;
inline constexpr std::uint32_t kFlagReply = 1u << 2;
inline constexpr std::uint32_t kFlagNeedReply = 1u << 3;
// In the u64 of SET_VRING_KICK/CALL/ERR: the ring index, and "no fd follows".
inline constexpr std::uint64_t kVringIndexMask = 0xff;
inline constexpr std::uint64_t kVringNoFd = 1u << 8;

struct Header {
  std::uint32_t request = 0;
  std::uint32_t flags = 0;
  std::uint32_t size = 0;
};

struct Message {
  Header header;
  std::vector<std::uint8_t> payload;
  std::vector<UniqueFd> fds;
  bool need_reply() const { return header.flags & kFlagNeedReply; }
};

// Checks version and size; nullopt with `error` set if the header is bad.
std::optional<Header> decode_header(std::span<const std::uint8_t> bytes, std::string& error);
std::vector<std::uint8_t> encode_reply(std::uint32_t request, std::span<const std::uint8_t> payload);

struct VringState {
  std::uint32_t index = 0;
  std::uint32_t num = 0;
};
struct VringAddr {
  std::uint32_t index = 0;
  std::uint32_t flags = 0;
  std::uint64_t desc_user_addr = 0, used_user_addr = 0, avail_user_addr = 0, log_guest_addr = 0;
};

// SET_LOG_BASE: where the dirty log lies in the fd that comes with it.
struct LogArea {
  std::uint64_t size = 0;
  std::uint64_t offset = 0;
};
// SET_DEVICE_STATE_FD: which way the state moves (0 save, 1 load) and the
// device's phase (0: stopped, the only one defined).
struct DeviceStateRequest {
  std::uint32_t direction = 0;
  std::uint32_t phase = 0;
};
inline constexpr std::uint32_t kStateDirectionSave = 0;
inline constexpr std::uint32_t kStateDirectionLoad = 1;
inline constexpr std::uint32_t kStatePhaseStopped = 0;
// SET_DEVICE_STATE_FD's reply: error code 0 in the low byte, and "no fd of
// ours follows" (we use the front-end's pipe).
inline constexpr std::uint64_t kStateReplyNoFd = 1u << 8;

std::optional<std::uint64_t> decode_u64(std::span<const std::uint8_t> payload);
std::optional<VringState> decode_vring_state(std::span<const std::uint8_t> payload);
std::optional<VringAddr> decode_vring_addr(std::span<const std::uint8_t> payload);
std::optional<LogArea> decode_log_area(std::span<const std::uint8_t> payload);
std::optional<DeviceStateRequest> decode_device_state_request(std::span<const std::uint8_t> payload);
// At most GuestMemory::kMaxRegions regions; the payload may carry unused slots.
std::optional<std::vector<MemoryRegionSpec>> decode_memory_table(std::span<const std::uint8_t> payload);
std::vector<std::uint8_t> encode_u64(std::uint64_t value);
std::vector<std::uint8_t> encode_vring_state(VringState state);

// Socket I/O (blocking). read_message: false with an empty `error` on a
// clean end of stream, false with `error` on anything malformed.
bool read_message(int socket, Message& out, std::string& error);
bool write_all(int socket, std::span<const std::uint8_t> bytes, std::string& error);

}  // namespace gondolin::vfs::vhost
