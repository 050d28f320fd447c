// The guest's RAM as the vhost-user front-end shares it (SET_MEM_TABLE):
// each region is an fd we map, known by its guest-physical address and by
// the front-end's own virtual address. Every translation checks that the
// whole [address, address + length) lies inside one region.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "util/unique_fd.h"

namespace gondolin::vfs::vhost {

struct MemoryRegionSpec {
  std::uint64_t guest_phys_addr = 0;
  std::uint64_t size = 0;
  std::uint64_t user_addr = 0;    // the front-end's virtual address of the region
  std::uint64_t mmap_offset = 0;  // where the region starts inside the fd
};

class GuestMemory {
 public:
  static constexpr std::size_t kMaxRegions = 8;
  static constexpr std::uint64_t kMaxRegionBytes = 1ull << 40;

  GuestMemory() = default;
  GuestMemory(GuestMemory&&) noexcept;
  GuestMemory& operator=(GuestMemory&&) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory();

  // Maps every region (fds in the same order). Returns an empty string on
  // success, else why not (nothing stays mapped then).
  std::string map(const std::vector<MemoryRegionSpec>& specs, std::vector<UniqueFd> fds);

  // Host pointer to guest-physical [gpa, gpa + len), or nullptr if any byte
  // lies outside a region. len 0 is valid inside a region.
  std::uint8_t* from_guest_phys(std::uint64_t gpa, std::uint64_t len) const;
  // The same for the front-end's virtual addresses (used by SET_VRING_ADDR).
  std::uint8_t* from_user_addr(std::uint64_t uva, std::uint64_t len) const;

  bool empty() const { return regions_.empty(); }
  std::size_t region_count() const { return regions_.size(); }

  // For tests: a region over memory we own already (not unmapped by us).
  void add_unowned_region_for_test(const MemoryRegionSpec& spec, std::uint8_t* host);

 private:
  struct Region {
    MemoryRegionSpec spec;
    std::uint8_t* host = nullptr;  // the region's first byte
    void* mapping = nullptr;       // what to munmap (nullptr: not ours)
    std::size_t mapping_len = 0;
  };
  void unmap_all();
  static std::uint8_t* find(const std::vector<Region>& regions, std::uint64_t addr, std::uint64_t len,
                            bool by_user_addr);

  std::vector<Region> regions_;
};

}  // namespace gondolin::vfs::vhost
