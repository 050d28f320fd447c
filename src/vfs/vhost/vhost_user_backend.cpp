#include "vfs/vhost/vhost_user_backend.h"

#include <sys/eventfd.h>

namespace gondolin::vfs::vhost {

namespace {

constexpr std::uint64_t kOfferedFeatures = kFeatureVersion1 | kFeatureProtocolFeatures | kFeatureLogAll;
constexpr std::uint64_t kBaseProtocolFeatures =
    kProtocolFeatureMq | kProtocolFeatureLogShmfd | kProtocolFeatureReplyAck;

bool aligned(std::uint64_t addr, std::uint64_t alignment) { return addr % alignment == 0; }

std::string expect_no_fds(const Message& m) { return m.fds.empty() ? "" : "came with an unexpected fd"; }

}  // namespace

const VhostUserBackend::HandlerEntry VhostUserBackend::kHandlers[] = {
    {Request::GetFeatures, &VhostUserBackend::get_features},
    {Request::SetFeatures, &VhostUserBackend::set_features},
    {Request::SetOwner, &VhostUserBackend::set_owner},
    {Request::ResetOwner, &VhostUserBackend::reset_owner},
    {Request::SetMemTable, &VhostUserBackend::set_mem_table},
    {Request::SetLogBase, &VhostUserBackend::set_log_base},
    {Request::SetLogFd, &VhostUserBackend::set_log_fd},
    {Request::SetVringNum, &VhostUserBackend::set_vring_num},
    {Request::SetVringAddr, &VhostUserBackend::set_vring_addr},
    {Request::SetVringBase, &VhostUserBackend::set_vring_base},
    {Request::GetVringBase, &VhostUserBackend::get_vring_base},
    {Request::SetVringKick, &VhostUserBackend::set_vring_kick},
    {Request::SetVringCall, &VhostUserBackend::set_vring_call},
    {Request::SetVringErr, &VhostUserBackend::set_vring_err},
    {Request::GetProtocolFeatures, &VhostUserBackend::get_protocol_features},
    {Request::SetProtocolFeatures, &VhostUserBackend::set_protocol_features},
    {Request::GetQueueNum, &VhostUserBackend::get_queue_num},
    {Request::SetVringEnable, &VhostUserBackend::set_vring_enable},
    {Request::SetDeviceStateFd, &VhostUserBackend::set_device_state_fd},
    {Request::CheckDeviceState, &VhostUserBackend::check_device_state},
};

VhostUserBackend::VhostUserBackend(std::uint32_t queue_count, std::uint64_t max_request_bytes, DeviceStateHooks hooks)
    : max_request_bytes_(max_request_bytes), hooks_(std::move(hooks)), rings_(queue_count) {}

VhostUserBackend::Outcome VhostUserBackend::handle(Message m) {
  const std::uint32_t code = m.header.request;
  Handler handler = nullptr;
  for (const auto& entry : kHandlers)
    if (static_cast<std::uint32_t>(entry.request) == code) handler = entry.handler;
  Outcome out;
  if (!handler) {
    out.error = "request " + std::to_string(code) + " is not supported by this back-end";
    return out;
  }
  Reply reply_payload;
  if (std::string why = (this->*handler)(m, reply_payload); !why.empty()) {
    out.error = std::string(request_name(code)) + ": " + why;
    return out;
  }
  if (reply_payload)
    out.reply = encode_reply(code, *reply_payload);
  else if (m.need_reply() && (protocol_features_ & kProtocolFeatureReplyAck))
    out.reply = encode_reply(code, encode_u64(0));  // REPLY_ACK: 0 is success
  return out;
}

// ---- Features and ownership ---------------------------------------------------

std::uint64_t VhostUserBackend::offered_protocol_features() const {
  return kBaseProtocolFeatures | (hooks_.save && hooks_.load ? kProtocolFeatureDeviceState : 0);
}

std::string VhostUserBackend::get_features(Message&, Reply& reply) {
  reply = encode_u64(kOfferedFeatures);
  return "";
}

std::string VhostUserBackend::set_features(Message& m, Reply&) {
  auto v = decode_u64(m.payload);
  if (!v) return "malformed payload";
  if (*v & ~kOfferedFeatures) return "features we did not offer were acknowledged";
  features_ = *v;  // may turn logging on or off while rings run
  update_used_logging();
  return "";
}

std::string VhostUserBackend::get_protocol_features(Message&, Reply& reply) {
  reply = encode_u64(offered_protocol_features());
  return "";
}

std::string VhostUserBackend::set_protocol_features(Message& m, Reply&) {
  auto v = decode_u64(m.payload);
  if (!v) return "malformed payload";
  if (*v & ~offered_protocol_features()) return "protocol features we did not offer were acknowledged";
  protocol_features_ = *v;
  return "";
}

std::string VhostUserBackend::set_owner(Message& m, Reply&) { return expect_no_fds(m); }

std::string VhostUserBackend::reset_owner(Message&, Reply&) {
  reset();
  return "";
}

std::string VhostUserBackend::get_queue_num(Message&, Reply& reply) {
  reply = encode_u64(rings_.size());
  return "";
}

void VhostUserBackend::reset() {
  for (auto& r : rings_) r = Ring{};
  memory_ = GuestMemory{};
  log_.unmap();
  features_ = 0;
  protocol_features_ = 0;
}

// ---- Memory and the dirty log --------------------------------------------------

std::string VhostUserBackend::set_mem_table(Message& m, Reply&) {
  auto regions = decode_memory_table(m.payload);
  if (!regions) return "malformed memory table";
  // Rings point into the old mapping: stop them until they are re-translated.
  for (auto& r : rings_)
    if (r.queue.running()) {
      r.base = r.queue.last_avail_idx();
      r.queue.stop();
    }
  if (std::string why = memory_.map(*regions, std::move(m.fds)); !why.empty()) return why;
  for (std::uint32_t i = 0; i < rings_.size(); ++i)
    if (std::string e = try_start(i); !e.empty()) return e;
  return "";
}

std::string VhostUserBackend::set_log_base(Message& m, Reply& reply) {
  if (!(protocol_features_ & kProtocolFeatureLogShmfd)) return "sent without LOG_SHMFD";
  auto area = decode_log_area(m.payload);
  if (!area) return "malformed payload";
  if (m.fds.size() != 1) return "expected one fd";
  if (std::string why = log_.map(m.fds[0], area->size, area->offset); !why.empty()) return why;
  update_used_logging();
  reply = encode_u64(0);  // with LOG_SHMFD the front-end waits for this answer
  return "";
}

std::string VhostUserBackend::set_log_fd(Message& m, Reply&) {
  // An eventfd to say "the log changed": QEMU reads the log when it syncs anyway.
  return m.fds.size() == 1 ? "" : "expected one fd";
}

void VhostUserBackend::update_used_logging() {
  for (auto& r : rings_) {
    const bool on = logging() && r.addr && (r.addr->flags & kVringFlagLog);
    r.queue.log_used(on ? &log_ : nullptr, on ? r.addr->log_guest_addr : 0);
  }
}

void VhostUserBackend::log_written(const DescriptorChain& chain, std::uint32_t written) const {
  if (!logging()) return;
  std::uint64_t left = written;
  for (const auto& s : chain.writable) {
    if (left == 0) break;
    const std::uint64_t n = std::min<std::uint64_t>(s.len, left);
    log_.mark(s.gpa, n);
    left -= n;
  }
}

// ---- Rings -------------------------------------------------------------------

std::optional<std::uint32_t> VhostUserBackend::ring_index(std::uint64_t index) const {
  if (index >= rings_.size()) return std::nullopt;
  return static_cast<std::uint32_t>(index);
}

std::string VhostUserBackend::stopped_ring(std::uint64_t index) const {
  if (!ring_index(index)) return "ring " + std::to_string(index) + " does not exist";
  if (rings_[index].queue.running()) return "ring " + std::to_string(index) + " is running";
  return "";
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

std::string VhostUserBackend::try_start(std::uint32_t index) {
  Ring& r = rings_[index];
  if (!r.kick || !r.addr || memory_.empty()) return "";
  if (!(features_ & kFeatureVersion1))
    return "the guest's driver did not accept VIRTIO_F_VERSION_1 (a legacy virtio-mmio device?)";
  if (!SplitQueue::valid_size(r.size)) return "ring " + std::to_string(index) + " started without a valid size";
  if (!aligned(r.addr->desc_user_addr, 16) || !aligned(r.addr->avail_user_addr, 2) ||
      !aligned(r.addr->used_user_addr, 4))
    return "ring " + std::to_string(index) + " has misaligned addresses";
  RingLayout layout{memory_.from_user_addr(r.addr->desc_user_addr, SplitQueue::desc_bytes(r.size)),
                    memory_.from_user_addr(r.addr->avail_user_addr, SplitQueue::avail_bytes(r.size)),
                    memory_.from_user_addr(r.addr->used_user_addr, SplitQueue::used_bytes(r.size))};
  if (!layout.desc || !layout.avail || !layout.used)
    return "ring " + std::to_string(index) + " lies outside the shared guest memory";
  // Without protocol features a ring is enabled as soon as it starts.
  if (!(features_ & kFeatureProtocolFeatures)) r.enabled = true;
  r.queue.start(memory_, r.size, layout, r.base, max_request_bytes_);
  update_used_logging();
  return "";
}

std::string VhostUserBackend::set_vring_num(Message& m, Reply&) {
  auto s = decode_vring_state(m.payload);
  if (!s) return "malformed payload";
  if (std::string why = stopped_ring(s->index); !why.empty()) return why;
  if (!SplitQueue::valid_size(s->num))
    return "ring size " + std::to_string(s->num) + " is not a power of two up to 32768";
  rings_[s->index].size = s->num;
  return "";
}

std::string VhostUserBackend::set_vring_base(Message& m, Reply&) {
  auto s = decode_vring_state(m.payload);
  if (!s) return "malformed payload";
  if (std::string why = stopped_ring(s->index); !why.empty()) return why;
  if (s->num > 0xffff) return "base index " + std::to_string(s->num) + " is not 16-bit";
  rings_[s->index].base = static_cast<std::uint16_t>(s->num);
  return "";
}

std::string VhostUserBackend::set_vring_addr(Message& m, Reply&) {
  auto a = decode_vring_addr(m.payload);
  if (!a) return "malformed payload";
  if (!ring_index(a->index)) return "ring " + std::to_string(a->index) + " does not exist";
  if (a->flags & ~kVringFlagLog) return "unknown ring address flags";
  Ring& r = rings_[a->index];
  if (r.queue.running()) {
    // QEMU turns used-ring logging on and off on running rings; the ring
    // itself must not move under us.
    const bool same = r.addr && r.addr->desc_user_addr == a->desc_user_addr &&
                      r.addr->used_user_addr == a->used_user_addr && r.addr->avail_user_addr == a->avail_user_addr;
    if (!same) return "ring " + std::to_string(a->index) + " is running";
    r.addr = *a;
    update_used_logging();
    return "";
  }
  r.addr = *a;
  return try_start(a->index);
}

std::string VhostUserBackend::get_vring_base(Message& m, Reply& reply) {
  auto s = decode_vring_state(m.payload);
  if (!s || !ring_index(s->index)) return "malformed payload or no such ring";
  // Stops the ring: the front-end resumes it later from this index.
  Ring& r = rings_[s->index];
  if (r.queue.running()) r.base = r.queue.last_avail_idx();
  r.queue.stop();
  r.kick.reset();
  r.enabled = false;
  reply = encode_vring_state({s->index, r.base});
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

std::string VhostUserBackend::set_vring_kick(Message& m, Reply&) {
  if (std::string e = set_vring_fd(m, &Ring::kick, true); !e.empty()) return e;
  auto index = static_cast<std::uint32_t>(*decode_u64(m.payload) & kVringIndexMask);
  if (rings_[index].queue.running()) return "";  // a new kick fd for a running ring
  return try_start(index);
}

std::string VhostUserBackend::set_vring_call(Message& m, Reply&) { return set_vring_fd(m, &Ring::call, false); }
std::string VhostUserBackend::set_vring_err(Message& m, Reply&) { return set_vring_fd(m, &Ring::err, false); }

std::string VhostUserBackend::set_vring_enable(Message& m, Reply&) {
  auto s = decode_vring_state(m.payload);
  if (!s || !ring_index(s->index) || s->num > 1) return "malformed payload or no such ring";
  if (!(features_ & kFeatureProtocolFeatures)) return "sent without protocol features";
  rings_[s->index].enabled = s->num == 1;
  return "";
}

// ---- Device state ------------------------------------------------------------

std::string VhostUserBackend::set_device_state_fd(Message& m, Reply& reply) {
  if (!state_migration_negotiated()) return "sent without DEVICE_STATE";
  auto r = decode_device_state_request(m.payload);
  if (!r) return "malformed payload";
  if (r->direction != kStateDirectionSave && r->direction != kStateDirectionLoad)
    return "unknown transfer direction " + std::to_string(r->direction);
  if (r->phase != kStatePhaseStopped) return "unknown transfer phase " + std::to_string(r->phase);
  if (m.fds.size() != 1) return "expected one fd";
  for (std::uint32_t i = 0; i < rings_.size(); ++i)
    if (rings_[i].queue.running()) return "the device's ring " + std::to_string(i) + " is still running";
  state_error_.clear();
  if (r->direction == kStateDirectionSave)
    transfer_.start_save(std::move(m.fds[0]), hooks_.save());
  else
    transfer_.start_load(std::move(m.fds[0]), hooks_.max_bytes);
  transfer_started_ = true;
  reply = encode_u64(kStateReplyNoFd);  // success, and the front-end's own pipe is used
  return "";
}

std::string VhostUserBackend::check_device_state(Message&, Reply& reply) {
  if (!state_migration_negotiated()) return "sent without DEVICE_STATE";
  if (!transfer_started_) {
    state_error_ = "no state transfer was started";
  } else {
    transfer_started_ = false;
    const bool loading = transfer_.direction() == StateTransfer::Direction::Load;
    StateTransfer::Outcome o = transfer_.finish();
    state_error_ = o.error;
    if (state_error_.empty() && loading) state_error_ = hooks_.load(o.data);
  }
  reply = encode_u64(state_error_.empty() ? 0 : 1);
  return "";
}

}  // namespace gondolin::vfs::vhost
