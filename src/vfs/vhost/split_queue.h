// The device side of one split virtqueue (virtio 1.x, section 2.7) in
// memory the guest shares with us. The guest is hostile: every index it
// writes is bounds-checked, every descriptor is copied once before use, a
// chain longer than the ring (a loop) or pointing outside guest RAM breaks
// the queue for good. No indirect descriptors and no event index: we do not
// offer those features, so a descriptor asking for them is an error.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vfs/vhost/dirty_log.h"
#include "vfs/vhost/guest_memory.h"

namespace gondolin::vfs::vhost {

struct Segment {
  std::uint8_t* data = nullptr;
  std::uint32_t len = 0;
  std::uint64_t gpa = 0;  // guest-physical address of data[0] (for the dirty log)
};

struct DescriptorChain {
  std::uint16_t head = 0;
  std::vector<Segment> readable;  // device reads (the request)
  std::vector<Segment> writable;  // device writes (the reply)
  std::uint64_t readable_bytes = 0;
  std::uint64_t writable_bytes = 0;

  // The readable part (or its first `limit` bytes) as one buffer, copied so
  // the guest cannot change it while we parse it.
  std::vector<std::uint8_t> gather(std::uint64_t limit = UINT64_MAX) const;
  // The readable / writable part from byte `offset` on, as pieces pointing
  // into guest memory (for data we move without parsing).
  std::vector<std::span<const char>> readable_from(std::uint64_t offset) const;
  std::vector<std::span<char>> writable_from(std::uint64_t offset) const;
  // Copies `bytes` into the writable part; returns how many fit.
  std::uint32_t scatter(std::span<const std::uint8_t> bytes) const;
};

// Ring addresses as host pointers into guest memory, already bounds-checked.
struct RingLayout {
  std::uint8_t* desc = nullptr;
  std::uint8_t* avail = nullptr;
  std::uint8_t* used = nullptr;
};

class SplitQueue {
 public:
  static constexpr std::uint32_t kMaxSize = 32768;

  // Bytes each ring occupies for `size` entries (without event-idx fields we
  // do not use, but the guest allocates them; include them for the bounds).
  static std::uint64_t desc_bytes(std::uint32_t size) { return 16ull * size; }
  static std::uint64_t avail_bytes(std::uint32_t size) { return 6ull + 2ull * size; }
  static std::uint64_t used_bytes(std::uint32_t size) { return 6ull + 8ull * size; }
  static bool valid_size(std::uint32_t size) { return size > 0 && size <= kMaxSize && (size & (size - 1)) == 0; }

  // `memory` must outlive the queue's use; `rings` must lie inside it with
  // the sizes above. max_readable bounds one request's length.
  void start(const GuestMemory& memory, std::uint32_t size, RingLayout rings, std::uint16_t last_avail_idx,
             std::uint64_t max_readable);
  void stop() { running_ = false; }
  // While `log` is non-null, push_used marks the used-ring bytes it writes,
  // as if the ring started at guest-physical `used_gpa` (QEMU's log_guest_addr).
  void log_used(const DirtyLog* log, std::uint64_t used_gpa) {
    used_log_ = log;
    used_log_gpa_ = used_gpa;
  }
  bool running() const { return running_; }
  bool broken() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  std::uint16_t last_avail_idx() const { return last_avail_idx_; }

  // The next available chain: true and `out` filled; false if none is
  // available or the queue is broken (error() says why).
  bool pop(DescriptorChain& out);
  // Whether the guest has made a chain available that pop has not taken.
  bool has_available() const;
  // Returns a chain to the guest with `written` bytes in its writable part.
  void push_used(std::uint16_t head, std::uint32_t written);
  // After push_used: whether the guest wants an interrupt.
  bool guest_wants_interrupt() const;

 private:
  bool fail(std::string why);

  const GuestMemory* memory_ = nullptr;
  RingLayout rings_;
  std::uint32_t size_ = 0;
  std::uint16_t last_avail_idx_ = 0;
  std::uint16_t used_idx_ = 0;
  std::uint64_t max_readable_ = 0;
  const DirtyLog* used_log_ = nullptr;
  std::uint64_t used_log_gpa_ = 0;
  bool running_ = false;
  std::string error_;
};

}  // namespace gondolin::vfs::vhost
