// Turning a distribution bzImage into something QEMU boots fastest.
//
// Under TCG the kernel's self-decompression costs over a second, so the image
// builder stores the uncompressed ELF vmlinux when the kernel supports PVH
// entry (QEMU's microvm and q35 load it directly with -kernel).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gondolin {

struct BzImagePayload {
  std::string compression;  // lz4, gzip, xz, zstd, lzma, bzip2, lzo, or unknown
  std::string_view data;    // compressed vmlinux, inside the bzImage buffer
};

// Locates the compressed kernel inside a bzImage. nullopt if it is not one.
std::optional<BzImagePayload> find_bzimage_payload(std::string_view bzimage);

// Decodes the LZ4 "legacy" frame format the kernel build uses. nullopt on
// malformed input or if the output would exceed `max_output`.
std::optional<std::string> lz4_legacy_decompress(std::string_view in, std::size_t max_output);

// True if `elf` is a 64-bit x86 ELF with a Xen PVH entry note.
bool is_pvh_elf(std::string_view elf);

}  // namespace gondolin
