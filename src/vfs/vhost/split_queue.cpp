#include "vfs/vhost/split_queue.h"

#include <bit>
#include <cstring>

namespace gondolin::vfs::vhost {

static_assert(std::endian::native == std::endian::little, "virtio 1.x rings are little-endian");

namespace {

constexpr std::uint16_t kDescNext = 1;
constexpr std::uint16_t kDescWrite = 2;
constexpr std::uint16_t kDescIndirect = 4;
constexpr std::uint16_t kAvailNoInterrupt = 1;

struct Descriptor {
  std::uint64_t addr;
  std::uint32_t len;
  std::uint16_t flags;
  std::uint16_t next;
};
static_assert(sizeof(Descriptor) == 16);

// Ring indices are written by the guest's vCPUs while we read them.
std::uint16_t load_acquire(const std::uint8_t* p) {
  return __atomic_load_n(reinterpret_cast<const std::uint16_t*>(p), __ATOMIC_ACQUIRE);
}

}  // namespace

std::vector<std::uint8_t> DescriptorChain::gather(std::uint64_t limit) const {
  std::vector<std::uint8_t> out;
  out.reserve(std::min(readable_bytes, limit));
  for (const auto& s : readable) {
    const std::size_t n = std::min<std::uint64_t>(s.len, limit - out.size());
    out.insert(out.end(), s.data, s.data + n);
    if (out.size() == limit) break;
  }
  return out;
}

namespace {
template <typename Char>
std::vector<std::span<Char>> pieces_from(const std::vector<Segment>& segments, std::uint64_t offset) {
  std::vector<std::span<Char>> out;
  for (const auto& s : segments) {
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    out.emplace_back(reinterpret_cast<Char*>(s.data) + offset, s.len - offset);
    offset = 0;
  }
  return out;
}
}  // namespace

std::vector<std::span<const char>> DescriptorChain::readable_from(std::uint64_t offset) const {
  return pieces_from<const char>(readable, offset);
}
std::vector<std::span<char>> DescriptorChain::writable_from(std::uint64_t offset) const {
  return pieces_from<char>(writable, offset);
}

std::uint32_t DescriptorChain::scatter(std::span<const std::uint8_t> bytes) const {
  std::size_t done = 0;
  for (const auto& s : writable) {
    if (done == bytes.size()) break;
    std::size_t n = std::min<std::size_t>(s.len, bytes.size() - done);
    std::memcpy(s.data, bytes.data() + done, n);
    done += n;
  }
  return static_cast<std::uint32_t>(done);
}

void SplitQueue::start(const GuestMemory& memory, std::uint32_t size, RingLayout rings, std::uint16_t last_avail_idx,
                       std::uint64_t max_readable) {
  memory_ = &memory;
  size_ = size;
  rings_ = rings;
  last_avail_idx_ = last_avail_idx;
  used_idx_ = load_acquire(rings_.used + 2);
  max_readable_ = max_readable;
  error_.clear();
  running_ = true;
}

bool SplitQueue::fail(std::string why) {
  error_ = std::move(why);
  running_ = false;
  return false;
}

bool SplitQueue::pop(DescriptorChain& out) {
  if (!running_ || broken()) return false;
  const std::uint16_t avail_idx = load_acquire(rings_.avail + 2);
  const std::uint16_t pending = static_cast<std::uint16_t>(avail_idx - last_avail_idx_);
  if (pending == 0) return false;
  if (pending > size_)
    return fail("the guest claims " + std::to_string(pending) + " available buffers in a ring of " +
                std::to_string(size_));

  std::uint16_t head = 0;
  std::memcpy(&head, rings_.avail + 4 + 2 * (last_avail_idx_ % size_), sizeof head);
  if (head >= size_)
    return fail("available ring names descriptor " + std::to_string(head) + " of " + std::to_string(size_));

  out = DescriptorChain{};
  out.head = head;
  std::uint16_t index = head;
  for (std::uint32_t count = 0;; ++count) {
    if (count == size_)
      return fail("descriptor chain at " + std::to_string(head) + " is longer than the ring (a loop?)");
    Descriptor d;
    std::memcpy(&d, rings_.desc + 16ull * index, sizeof d);  // read once: the guest may change it meanwhile
    if (d.flags & kDescIndirect) return fail("indirect descriptor, a feature we did not offer");
    std::uint8_t* data = memory_->from_guest_phys(d.addr, d.len);
    if (!data) return fail("descriptor " + std::to_string(index) + " points outside guest memory");
    const bool writable = d.flags & kDescWrite;
    if (writable) {
      out.writable_bytes += d.len;
      if (out.writable_bytes > UINT32_MAX) return fail("descriptor chain has more than 4 GiB of writable space");
      if (d.len) out.writable.push_back(Segment{data, d.len, d.addr});
    } else {
      if (!out.writable.empty()) return fail("descriptor chain has a readable buffer after a writable one");
      out.readable_bytes += d.len;
      if (out.readable_bytes > max_readable_)
        return fail("request of more than " + std::to_string(max_readable_) + " bytes");
      if (d.len) out.readable.push_back(Segment{data, d.len, d.addr});
    }
    if (!(d.flags & kDescNext)) break;
    if (d.next >= size_) return fail("descriptor " + std::to_string(index) + " chains to " + std::to_string(d.next));
    index = d.next;
  }
  ++last_avail_idx_;
  return true;
}

void SplitQueue::push_used(std::uint16_t head, std::uint32_t written) {
  if (!running_) return;
  const std::uint64_t elem_offset = 4 + 8ull * (used_idx_ % size_);
  std::uint8_t* elem = rings_.used + elem_offset;
  const std::uint32_t id = head;
  std::memcpy(elem, &id, 4);
  std::memcpy(elem + 4, &written, 4);
  ++used_idx_;
  // The element must be visible before the index that publishes it.
  __atomic_store_n(reinterpret_cast<std::uint16_t*>(rings_.used + 2), used_idx_, __ATOMIC_RELEASE);
  if (used_log_) {
    used_log_->mark(used_log_gpa_ + elem_offset, 8);
    used_log_->mark(used_log_gpa_ + 2, 2);
  }
}

bool SplitQueue::has_available() const {
  return running_ && !broken() && load_acquire(rings_.avail + 2) != last_avail_idx_;
}

bool SplitQueue::guest_wants_interrupt() const {
  // Our used-index store must be ordered before reading the guest's flags,
  // or we could miss a guest that just re-enabled interrupts.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return !(load_acquire(rings_.avail) & kAvailNoInterrupt);
}

}  // namespace gondolin::vfs::vhost
