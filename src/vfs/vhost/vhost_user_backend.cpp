#include "vfs/vhost/vhost_user_backend.h"

#include <sys/eventfd.h>

namespace gondolin::vfs::vhost {

namespace {

constexpr std::uint64_t kOfferedFeatures = kFeatureVersion1 | kFeatureProtocolFeatures;
constexpr std::uint64_t kOfferedProtocolFeatures = kProtocolFeatureMq | kProtocolFeatureReplyAck;

bool aligned(std::uint64_t addr, std::uint64_t alignment) { return addr % alignment == 0; }

}  // namespace

VhostUserBackend::VhostUserBackend(std::uint32_t queue_count, std::uint64_t max_request_bytes)
    : max_request_bytes_(max_request_bytes), rings_(queue_count) {}

std::optional<std::uint32_t> VhostUserBackend::ring_index(std::uint64_t index) const {
  if (index >= rings_.size()) return std::nullopt;
  return static_cast<std::uint32_t>(index);
}

bool VhostUserBackend::serving(std::uint32_t index) const {
  const Ring& r = rings_[index];
  return r.queue.running() && r.enabled;
}

void VhostUserBackend::notify_guest(std::uint32_t index) {
  Ring& r = rings_[index];
  if (!r.call || !r.queue.guest_wants_interrupt()) return;
  ::eventfd_write(r.call.get(), 1);
}

void VhostUserBackend::reset() {
  for (auto& r : rings_) r = Ring{};
  memory_ = GuestMemory{};
  features_ = 0;
  protocol_features_ = 0;
}

std::string VhostUserBackend::try_start(std::uint32_t index) {
  Ring& r = rings_[index];
  if (!r.kick || !r.addr || memory_.empty()) return "";
  if (!(features_ & kFeatureVersion1))
    return "the guest's driver did not accept VIRTIO_F_VERSION_1 (a legacy virtio-mmio device?)";
  if (!SplitQueue::valid_size(r.size)) return "ring " + std::to_string(index) + " started without a valid size";
  if (!aligned(r.addr->desc_user_addr, 16) || !aligned(r.addr->avail_user_addr, 2) || !aligned(r.addr->used_user_addr, 4))
    return "ring " + std::to_string(index) + " has misaligned addresses";
  RingLayout layout{memory_.from_user_addr(r.addr->desc_user_addr, SplitQueue::desc_bytes(r.size)),
                    memory_.from_user_addr(r.addr->avail_user_addr, SplitQueue::avail_bytes(r.size)),
                    memory_.from_user_addr(r.addr->used_user_addr, SplitQueue::used_bytes(r.size))};
  if (!layout.desc || !layout.avail || !layout.used)
    return "ring " + std::to_string(index) + " lies outside the shared guest memory";
  // Without protocol features a ring is enabled as soon as it starts.
  if (!(features_ & kFeatureProtocolFeatures)) r.enabled = true;
  r.queue.start(memory_, r.size, layout, r.base, max_request_bytes_);
  return "";
}

std::string VhostUserBackend::set_vring_fd(const Message& m, UniqueFd Ring::*which, bool fd_required) {
  auto v = decode_u64(m.payload);
  if (!v || (*v & ~(kVringIndexMask | kVringNoFd)) != 0) return "malformed payload";
  auto index = ring_index(*v & kVringIndexMask);
  if (!index) return "ring " + std::to_string(*v & kVringIndexMask) + " does not exist";
  const bool no_fd = *v & kVringNoFd;
  if (no_fd && fd_required) return "polling rings (no kick fd) are not supported";
  if (m.fds.size() != (no_fd ? 0u : 1u)) return "expected " + std::string(no_fd ? "no fd" : "one fd");
  rings_[*index].*which = no_fd ? UniqueFd() : UniqueFd(::dup(m.fds[0].get()));
  if (!no_fd && !(rings_[*index].*which)) return "cannot keep the fd";
  return "";
}

VhostUserBackend::Outcome VhostUserBackend::handle(Message m) {
  const std::uint32_t code = m.header.request;
  const std::string name = request_name(code);
  Outcome out;
  std::optional<std::vector<std::uint8_t>> reply_payload;  // for requests that answer
  std::string error;
  auto bad = [&](const std::string& why) { error = name + ": " + why; };

  switch (static_cast<Request>(code)) {
    case Request::GetFeatures:
      reply_payload = encode_u64(kOfferedFeatures);
      break;
    case Request::SetFeatures: {
      auto v = decode_u64(m.payload);
      if (!v) bad("malformed payload");
      else if (*v & ~kOfferedFeatures) bad("features we did not offer were acknowledged");
      else features_ = *v;
      break;
    }
    case Request::GetProtocolFeatures:
      reply_payload = encode_u64(kOfferedProtocolFeatures);
      break;
    case Request::SetProtocolFeatures: {
      auto v = decode_u64(m.payload);
      if (!v) bad("malformed payload");
      else if (*v & ~kOfferedProtocolFeatures) bad("protocol features we did not offer were acknowledged");
      else protocol_features_ = *v;
      break;
    }
    case Request::SetOwner:
      break;
    case Request::ResetOwner:
      reset();
      break;
    case Request::GetQueueNum:
      reply_payload = encode_u64(rings_.size());
      break;
    case Request::SetMemTable: {
      auto regions = decode_memory_table(m.payload);
      if (!regions) {
        bad("malformed memory table");
        break;
      }
      // Rings point into the old mapping: stop them until they are re-translated.
      for (auto& r : rings_)
        if (r.queue.running()) {
          r.base = r.queue.last_avail_idx();
          r.queue.stop();
        }
      std::string why = memory_.map(*regions, std::move(m.fds));
      if (!why.empty()) {
        bad(why);
        break;
      }
      for (std::uint32_t i = 0; i < rings_.size() && error.empty(); ++i)
        if (std::string e = try_start(i); !e.empty()) bad(e);
      break;
    }
    case Request::SetVringNum: {
      auto s = decode_vring_state(m.payload);
      if (!s) bad("malformed payload");
      else if (!ring_index(s->index)) bad("ring " + std::to_string(s->index) + " does not exist");
      else if (!SplitQueue::valid_size(s->num)) bad("ring size " + std::to_string(s->num) + " is not a power of two up to 32768");
      else if (rings_[s->index].queue.running()) bad("ring " + std::to_string(s->index) + " is running");
      else rings_[s->index].size = s->num;
      break;
    }
    case Request::SetVringBase: {
      auto s = decode_vring_state(m.payload);
      if (!s) bad("malformed payload");
      else if (!ring_index(s->index)) bad("ring " + std::to_string(s->index) + " does not exist");
      else if (s->num > 0xffff) bad("base index " + std::to_string(s->num) + " is not 16-bit");
      else if (rings_[s->index].queue.running()) bad("ring " + std::to_string(s->index) + " is running");
      else rings_[s->index].base = static_cast<std::uint16_t>(s->num);
      break;
    }
    case Request::SetVringAddr: {
      auto a = decode_vring_addr(m.payload);
      if (!a) bad("malformed payload");
      else if (!ring_index(a->index)) bad("ring " + std::to_string(a->index) + " does not exist");
      else if (a->flags & ~1u) bad("unknown ring address flags");  // bit 0 (logging) is harmless: we never log
      else if (rings_[a->index].queue.running()) bad("ring " + std::to_string(a->index) + " is running");
      else {
        rings_[a->index].addr = *a;
        if (std::string e = try_start(a->index); !e.empty()) bad(e);
      }
      break;
    }
    case Request::GetVringBase: {
      auto s = decode_vring_state(m.payload);
      if (!s || !ring_index(s->index)) {
        bad("malformed payload or no such ring");
        break;
      }
      // Stops the ring: the front-end resumes it later from this index.
      Ring& r = rings_[s->index];
      if (r.queue.running()) r.base = r.queue.last_avail_idx();
      r.queue.stop();
      r.kick.reset();
      r.enabled = false;
      reply_payload = encode_vring_state({s->index, r.base});
      break;
    }
    case Request::SetVringKick: {
      if (std::string e = set_vring_fd(m, &Ring::kick, true); !e.empty()) {
        bad(e);
        break;
      }
      auto index = static_cast<std::uint32_t>(*decode_u64(m.payload) & kVringIndexMask);
      if (rings_[index].queue.running()) break;  // a new kick fd for a running ring
      if (std::string e = try_start(index); !e.empty()) bad(e);
      break;
    }
    case Request::SetVringCall:
      if (std::string e = set_vring_fd(m, &Ring::call, false); !e.empty()) bad(e);
      break;
    case Request::SetVringErr:
      if (std::string e = set_vring_fd(m, &Ring::err, false); !e.empty()) bad(e);
      break;
    case Request::SetVringEnable: {
      auto s = decode_vring_state(m.payload);
      if (!s || !ring_index(s->index) || s->num > 1) bad("malformed payload or no such ring");
      else if (!(features_ & kFeatureProtocolFeatures)) bad("sent without protocol features");
      else rings_[s->index].enabled = s->num == 1;
      break;
    }
    default:
      error = "request " + std::to_string(code) + " is not supported by this back-end";
      break;
  }

  if (!error.empty()) {
    out.error = error;
    return out;
  }
  if (reply_payload) {
    out.reply = encode_reply(code, *reply_payload);
  } else if (m.need_reply() && (protocol_features_ & kProtocolFeatureReplyAck)) {
    out.reply = encode_reply(code, encode_u64(0));  // REPLY_ACK: 0 is success
  }
  return out;
}

}  // namespace gondolin::vfs::vhost
