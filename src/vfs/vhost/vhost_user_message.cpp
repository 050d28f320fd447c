#include "vfs/vhost/vhost_user_message.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace gondolin::vfs::vhost {

namespace {

template <typename T>
T load(std::span<const std::uint8_t> bytes, std::size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof v);
  return v;
}

template <typename T>
void put(std::vector<std::uint8_t>& out, T v) {
  const std::size_t at = out.size();
  out.resize(at + sizeof v);
  std::memcpy(out.data() + at, &v, sizeof v);
}

constexpr std::size_t kVringAddrSize = 8 + 4 * 8;
constexpr std::size_t kMemoryRegionSize = 32;

}  // namespace

const char* request_name(std::uint32_t request) {
  static constexpr struct {
    Request request;
    const char* name;
  } kNames[] = {
      {Request::GetFeatures, "GET_FEATURES"},
      {Request::SetFeatures, "SET_FEATURES"},
      {Request::SetOwner, "SET_OWNER"},
      {Request::ResetOwner, "RESET_OWNER"},
      {Request::SetMemTable, "SET_MEM_TABLE"},
      {Request::SetLogBase, "SET_LOG_BASE"},
      {Request::SetLogFd, "SET_LOG_FD"},
      {Request::SetVringNum, "SET_VRING_NUM"},
      {Request::SetVringAddr, "SET_VRING_ADDR"},
      {Request::SetVringBase, "SET_VRING_BASE"},
      {Request::GetVringBase, "GET_VRING_BASE"},
      {Request::SetVringKick, "SET_VRING_KICK"},
      {Request::SetVringCall, "SET_VRING_CALL"},
      {Request::SetVringErr, "SET_VRING_ERR"},
      {Request::GetProtocolFeatures, "GET_PROTOCOL_FEATURES"},
      {Request::SetProtocolFeatures, "SET_PROTOCOL_FEATURES"},
      {Request::GetQueueNum, "GET_QUEUE_NUM"},
      {Request::SetVringEnable, "SET_VRING_ENABLE"},
      {Request::SetDeviceStateFd, "SET_DEVICE_STATE_FD"},
      {Request::CheckDeviceState, "CHECK_DEVICE_STATE"},
  };
  for (const auto& n : kNames)
    if (static_cast<std::uint32_t>(n.request) == request) return n.name;
  return "unknown";
}

std::optional<Header> decode_header(std::span<const std::uint8_t> bytes, std::string& error) {
  if (bytes.size() != kHeaderSize) {
    error = "short vhost-user header";
    return std::nullopt;
  }
  Header h{load<std::uint32_t>(bytes, 0), load<std::uint32_t>(bytes, 4), load<std::uint32_t>(bytes, 8)};
  if ((h.flags & kFlagVersionMask) != kFlagVersion) {
    error = "vhost-user message of version " + std::to_string(h.flags & kFlagVersionMask) + " (we speak 1)";
    return std::nullopt;
  }
  if (h.flags & kFlagReply) {
    error = "the front-end sent a reply where a request belongs";
    return std::nullopt;
  }
  if (h.size > kMaxPayload) {
    error = "vhost-user message " + std::string(request_name(h.request)) + " of " + std::to_string(h.size) + " bytes";
    return std::nullopt;
  }
  return h;
}

std::vector<std::uint8_t> encode_reply(std::uint32_t request, std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> out;
  put(out, request);
  put(out, kFlagVersion | kFlagReply);
  put(out, static_cast<std::uint32_t>(payload.size()));
  const std::size_t at = out.size();
  out.resize(at + payload.size());
  if (!payload.empty()) std::memcpy(out.data() + at, payload.data(), payload.size());
  return out;
}

std::optional<std::uint64_t> decode_u64(std::span<const std::uint8_t> payload) {
  if (payload.size() != 8) return std::nullopt;
  return load<std::uint64_t>(payload, 0);
}

std::optional<VringState> decode_vring_state(std::span<const std::uint8_t> payload) {
  if (payload.size() != 8) return std::nullopt;
  return VringState{load<std::uint32_t>(payload, 0), load<std::uint32_t>(payload, 4)};
}

std::optional<VringAddr> decode_vring_addr(std::span<const std::uint8_t> payload) {
  if (payload.size() != kVringAddrSize) return std::nullopt;
  VringAddr a;
  a.index = load<std::uint32_t>(payload, 0);
  a.flags = load<std::uint32_t>(payload, 4);
  a.desc_user_addr = load<std::uint64_t>(payload, 8);
  a.used_user_addr = load<std::uint64_t>(payload, 16);
  a.avail_user_addr = load<std::uint64_t>(payload, 24);
  a.log_guest_addr = load<std::uint64_t>(payload, 32);
  return a;
}

std::optional<LogArea> decode_log_area(std::span<const std::uint8_t> payload) {
  if (payload.size() != 16) return std::nullopt;
  return LogArea{load<std::uint64_t>(payload, 0), load<std::uint64_t>(payload, 8)};
}

std::optional<DeviceStateRequest> decode_device_state_request(std::span<const std::uint8_t> payload) {
  if (payload.size() != 8) return std::nullopt;
  return DeviceStateRequest{load<std::uint32_t>(payload, 0), load<std::uint32_t>(payload, 4)};
}

std::optional<std::vector<MemoryRegionSpec>> decode_memory_table(std::span<const std::uint8_t> payload) {
  if (payload.size() < 8) return std::nullopt;
  const std::uint32_t count = load<std::uint32_t>(payload, 0);
  if (count == 0 || count > GuestMemory::kMaxRegions || payload.size() < 8 + count * kMemoryRegionSize ||
      payload.size() > 8 + GuestMemory::kMaxRegions * kMemoryRegionSize)
    return std::nullopt;
  std::vector<MemoryRegionSpec> regions;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t at = 8 + i * kMemoryRegionSize;
    regions.push_back(MemoryRegionSpec{load<std::uint64_t>(payload, at), load<std::uint64_t>(payload, at + 8),
                                       load<std::uint64_t>(payload, at + 16), load<std::uint64_t>(payload, at + 24)});
  }
  return regions;
}

std::vector<std::uint8_t> encode_u64(std::uint64_t value) {
  std::vector<std::uint8_t> out;
  put(out, value);
  return out;
}

std::vector<std::uint8_t> encode_vring_state(VringState state) {
  std::vector<std::uint8_t> out;
  put(out, state.index);
  put(out, state.num);
  return out;
}

bool read_message(int socket, Message& out, std::string& error) {
  error.clear();
  out = Message{};
  std::uint8_t header[kHeaderSize];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  iovec iov{header, sizeof header};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  while (n < 0 && errno == EINTR);
  // Own every descriptor first, so none leaks whatever happens next.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      out.fds.emplace_back(fd);
    }
  }
  if (n == 0) return false;
  if (n < 0) {
    error = std::string("vhost-user socket: ") + std::strerror(errno);
    return false;
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    error = "vhost-user message with more than " + std::to_string(kMaxFdsPerMessage) + " fds";
    return false;
  }
  if (static_cast<std::size_t>(n) != kHeaderSize) {
    error = "vhost-user socket closed inside a header";
    return false;
  }
  auto h = decode_header(header, error);
  if (!h) return false;
  out.header = *h;
  out.payload.resize(h->size);
  std::size_t got = 0;
  while (got < out.payload.size()) {
    ssize_t r = ::recv(socket, out.payload.data() + got, out.payload.size() - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      error = "vhost-user socket closed inside a message";
      return false;
    }
    got += static_cast<std::size_t>(r);
  }
  return true;
}

bool write_all(int socket, std::span<const std::uint8_t> bytes, std::string& error) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(socket, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = std::string("vhost-user socket: ") + std::strerror(errno);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace gondolin::vfs::vhost
