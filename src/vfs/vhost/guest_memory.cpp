#include "vfs/vhost/guest_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace gondolin::vfs::vhost {

GuestMemory::GuestMemory(GuestMemory&& o) noexcept : regions_(std::exchange(o.regions_, {})) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& o) noexcept {
  if (this != &o) {
    unmap_all();
    regions_ = std::exchange(o.regions_, {});
  }
  return *this;
}

GuestMemory::~GuestMemory() { unmap_all(); }

void GuestMemory::unmap_all() {
  for (auto& r : regions_)
    if (r.mapping) ::munmap(r.mapping, r.mapping_len);
  regions_.clear();
}

std::string GuestMemory::map(const std::vector<MemoryRegionSpec>& specs, std::vector<UniqueFd> fds) {
  unmap_all();
  if (specs.empty() || specs.size() > kMaxRegions)
    return "memory table has " + std::to_string(specs.size()) + " regions";
  if (fds.size() != specs.size())
    return "memory table has " + std::to_string(specs.size()) + " regions but " + std::to_string(fds.size()) + " fds";
  std::vector<Region> mapped;
  auto fail = [&](const std::string& why) {
    for (auto& r : mapped) ::munmap(r.mapping, r.mapping_len);
    return why;
  };
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const MemoryRegionSpec& s = specs[i];
    const std::string which = "memory region " + std::to_string(i);
    if (s.size == 0 || s.size > kMaxRegionBytes || s.mmap_offset > kMaxRegionBytes)
      return fail(which + " has an impossible size or offset");
    if (s.guest_phys_addr + s.size < s.guest_phys_addr || s.user_addr + s.size < s.user_addr)
      return fail(which + " wraps around the address space");
    if (!fds[i]) return fail(which + " came without an fd");
    // Touching a mapping past the end of its file would kill us with SIGBUS.
    struct stat st {};
    if (::fstat(fds[i].get(), &st) != 0 || st.st_size < 0 ||
        static_cast<std::uint64_t>(st.st_size) < s.mmap_offset + s.size)
      return fail(which + " is larger than its file");
    std::size_t len = static_cast<std::size_t>(s.size + s.mmap_offset);
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fds[i].get(), 0);
    if (p == MAP_FAILED) return fail("cannot map " + which + ": " + std::strerror(errno));
    mapped.push_back(Region{s, static_cast<std::uint8_t*>(p) + s.mmap_offset, p, len});
  }
  // Overlapping guest-physical ranges would make a translation ambiguous.
  for (std::size_t i = 0; i < mapped.size(); ++i)
    for (std::size_t j = i + 1; j < mapped.size(); ++j) {
      const auto& a = mapped[i].spec;
      const auto& b = mapped[j].spec;
      if (a.guest_phys_addr < b.guest_phys_addr + b.size && b.guest_phys_addr < a.guest_phys_addr + a.size)
        return fail("memory regions " + std::to_string(i) + " and " + std::to_string(j) + " overlap");
    }
  regions_ = std::move(mapped);
  return "";  // the mappings keep the memory; the fds close here
}

void GuestMemory::add_unowned_region_for_test(const MemoryRegionSpec& spec, std::uint8_t* host) {
  regions_.push_back(Region{spec, host, nullptr, 0});
}

std::uint8_t* GuestMemory::find(const std::vector<Region>& regions, std::uint64_t addr, std::uint64_t len,
                                bool by_user_addr) {
  for (const auto& r : regions) {
    std::uint64_t start = by_user_addr ? r.spec.user_addr : r.spec.guest_phys_addr;
    if (addr < start) continue;
    std::uint64_t offset = addr - start;
    if (offset > r.spec.size || len > r.spec.size - offset) continue;
    if (offset == r.spec.size && len == 0) continue;  // one past the end is not inside
    return r.host + offset;
  }
  return nullptr;
}

std::uint8_t* GuestMemory::from_guest_phys(std::uint64_t gpa, std::uint64_t len) const {
  return find(regions_, gpa, len, false);
}

std::uint8_t* GuestMemory::from_user_addr(std::uint64_t uva, std::uint64_t len) const {
  return find(regions_, uva, len, true);
}

}  // namespace gondolin::vfs::vhost
