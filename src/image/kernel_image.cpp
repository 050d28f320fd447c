#include "image/kernel_image.h"

#include <cstdint>
#include <cstring>

namespace gondolin {
namespace {

std::uint32_t le32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint32_t>(u[0]) | (static_cast<std::uint32_t>(u[1]) << 8) |
         (static_cast<std::uint32_t>(u[2]) << 16) | (static_cast<std::uint32_t>(u[3]) << 24);
}
std::uint16_t le16(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint16_t>(u[0] | (u[1] << 8));
}
std::uint64_t le64(const char* p) { return le32(p) | (static_cast<std::uint64_t>(le32(p + 4)) << 32); }

bool starts_with_bytes(std::string_view s, std::initializer_list<unsigned char> magic) {
  if (s.size() < magic.size()) return false;
  std::size_t i = 0;
  for (unsigned char m : magic)
    if (static_cast<unsigned char>(s[i++]) != m) return false;
  return true;
}

constexpr std::uint32_t kLz4LegacyMagic = 0x184C2102;
constexpr std::size_t kLz4LegacyBlock = 8u << 20;

// One LZ4 block appended to `out`. Offsets may reach into earlier blocks'
// output, which is what the legacy format's linked blocks rely on.
bool lz4_block(std::string_view in, std::string& out, std::size_t max_output) {
  std::size_t ip = 0;
  const std::size_t n = in.size();
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(in[i]); };
  while (ip < n) {
    unsigned token = byte(ip++);
    std::size_t lit = token >> 4;
    if (lit == 15) {
      unsigned char b;
      do {
        if (ip >= n) return false;
        b = byte(ip++);
        lit += b;
      } while (b == 255);
    }
    if (lit > n - ip || out.size() + lit > max_output) return false;
    out.append(in.data() + ip, lit);
    ip += lit;
    if (ip == n) return true;  // the last sequence carries only literals
    if (n - ip < 2) return false;
    std::size_t offset = byte(ip) | (static_cast<std::size_t>(byte(ip + 1)) << 8);
    ip += 2;
    if (offset == 0 || offset > out.size()) return false;
    std::size_t match = token & 15;
    if (match == 15) {
      unsigned char b;
      do {
        if (ip >= n) return false;
        b = byte(ip++);
        match += b;
      } while (b == 255);
    }
    match += 4;
    if (out.size() + match > max_output) return false;
    std::size_t from = out.size() - offset;
    for (std::size_t i = 0; i < match; ++i) out.push_back(out[from + i]);  // may overlap itself
  }
  return true;
}

}  // namespace

std::optional<BzImagePayload> find_bzimage_payload(std::string_view img) {
  if (img.size() < 0x250 || std::memcmp(img.data() + 0x202, "HdrS", 4) != 0) return std::nullopt;
  unsigned setup_sects = static_cast<unsigned char>(img[0x1f1]);
  if (setup_sects == 0) setup_sects = 4;
  if (le16(img.data() + 0x206) < 0x0208) return std::nullopt;  // payload fields need boot protocol 2.08
  std::uint64_t start = (static_cast<std::uint64_t>(setup_sects) + 1) * 512 + le32(img.data() + 0x248);
  std::uint64_t len = le32(img.data() + 0x24c);
  if (start > img.size() || len > img.size() - start) return std::nullopt;
  BzImagePayload p;
  p.data = img.substr(start, len);
  if (starts_with_bytes(p.data, {0x02, 0x21, 0x4c, 0x18}))
    p.compression = "lz4";
  else if (starts_with_bytes(p.data, {0x1f, 0x8b}))
    p.compression = "gzip";
  else if (starts_with_bytes(p.data, {0xfd, '7', 'z', 'X', 'Z', 0x00}))
    p.compression = "xz";
  else if (starts_with_bytes(p.data, {0x28, 0xb5, 0x2f, 0xfd}))
    p.compression = "zstd";
  else if (starts_with_bytes(p.data, {0x5d, 0x00, 0x00}))
    p.compression = "lzma";
  else if (starts_with_bytes(p.data, {'B', 'Z', 'h'}))
    p.compression = "bzip2";
  else if (starts_with_bytes(p.data, {0x89, 'L', 'Z', 'O'}))
    p.compression = "lzo";
  else
    p.compression = "unknown";
  return p;
}

std::optional<std::string> lz4_legacy_decompress(std::string_view in, std::size_t max_output) {
  if (in.size() < 4 || le32(in.data()) != kLz4LegacyMagic) return std::nullopt;
  std::string out;
  std::size_t pos = 4;
  while (in.size() - pos >= 4) {
    std::uint32_t block = le32(in.data() + pos);
    if (block == kLz4LegacyMagic) {  // concatenated frames
      pos += 4;
      continue;
    }
    // The kernel appends the uncompressed size after the last block: a
    // "block" that does not fit is that trailer, not data.
    if (block > in.size() - pos - 4) break;
    if (block > kLz4LegacyBlock + kLz4LegacyBlock / 255 + 16) return std::nullopt;
    pos += 4;
    if (!lz4_block(in.substr(pos, block), out, max_output)) return std::nullopt;
    pos += block;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

bool is_pvh_elf(std::string_view elf) {
  if (elf.size() < 64 || std::memcmp(elf.data(),
                                     "\x7f"
                                     "ELF",
                                     4) != 0)
    return false;
  if (elf[4] != 2 || elf[5] != 1 || le16(elf.data() + 18) != 62) return false;  // ELF64, LE, x86-64
  std::uint64_t phoff = le64(elf.data() + 32);
  std::uint16_t phentsize = le16(elf.data() + 54);
  std::uint16_t phnum = le16(elf.data() + 56);
  if (phentsize < 56 || phoff > elf.size() || std::uint64_t{phnum} * phentsize > elf.size() - phoff) return false;
  constexpr std::uint32_t kPtNote = 4;
  constexpr std::uint32_t kXenElfnotePhys32Entry = 18;
  for (std::uint16_t i = 0; i < phnum; ++i) {
    const char* ph = elf.data() + phoff + std::uint64_t{i} * phentsize;
    if (le32(ph) != kPtNote) continue;
    std::uint64_t off = le64(ph + 8), size = le64(ph + 32);
    if (off > elf.size() || size > elf.size() - off) continue;
    std::uint64_t p = off, end = off + size;
    while (end - p >= 12) {
      std::uint32_t namesz = le32(elf.data() + p), descsz = le32(elf.data() + p + 4), type = le32(elf.data() + p + 8);
      std::uint64_t name_pad = (std::uint64_t{namesz} + 3) & ~std::uint64_t{3};
      std::uint64_t desc_pad = (std::uint64_t{descsz} + 3) & ~std::uint64_t{3};
      if (name_pad + desc_pad > end - p - 12) break;
      std::string_view name(elf.data() + p + 12, namesz);
      if (type == kXenElfnotePhys32Entry && name.starts_with("Xen")) return true;
      p += 12 + name_pad + desc_pad;
    }
  }
  return false;
}

}  // namespace gondolin
