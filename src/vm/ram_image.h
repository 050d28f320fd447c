// Guest RAM in files gondolin owns.
//
// A VM whose RAM a vhost-user back-end must share (virtio-fs mounts) keeps
// it in a memfd of ours that QEMU maps shared (memory-backend-file on
// /proc/self/fd/N), never in QEMU's own memfd: QEMU migrating RAM reads
// every page to find the zero ones, and on shared memory a read of a page
// nobody touched allocates it, so saving or resuming a 512 MiB guest would
// fault in all 512 MiB (1.4 s here, and the memory stays taken). Instead a
// migration leaves such RAM out (x-ignore-shared) and it travels beside the
// state as a *RAM image*: a sparse file holding the pages that are not zero,
// at their offsets. A boot template's start gets its own copy of the
// template's RAM the same way (copy_ram_to_memfd).
//
// Invariants: an image is as long as the RAM; holes and zero pages read as
// zero; its digest covers the offset and bytes of each non-zero page only,
// so a copy that fills holes with zeros, or punches zero pages, keeps it.
//
// A digest names its algorithm (util/ram_digest.h). Saves write CRC-32C:
// the image is guest memory, checked for damage (whoever can rewrite it can
// rewrite the manifest beside it), and a resume checks it while QEMU starts,
// where SHA-256's ~60 ms of CPU was on the clock. Snapshots made before
// carry SHA-256 and are checked with it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "util/ram_digest.h"
#include "util/unique_fd.h"

namespace gondolin::vm {

// An empty memfd of `bytes`: a cold VM's RAM. Throws gondolin::Error (Io).
UniqueFd new_ram_memfd(std::uint64_t bytes);

// A memfd of `file`'s size and contents (only its data extents are copied;
// its holes stay holes). Throws gondolin::Error (Io).
UniqueFd copy_ram_to_memfd(const std::filesystem::path& file);

// An empty memfd of `file`'s size, and the copy in two steps: the second,
// fill_ram_memfd, may run while QEMU starts with the memfd mapped (QEMU
// reads no RAM before the migration). Both throw gondolin::Error (Io).
UniqueFd ram_memfd_sized_for(const std::filesystem::path& file);
void fill_ram_memfd(int memfd, const std::filesystem::path& file);

// Writes the non-zero pages of the RAM in `ram_fd` to the new file `to`
// (created 0600; it must not exist) and returns the image's digest
// (kRamDigestAlgorithms[0]). Throws
// gondolin::Error (Io), leaving no file behind.
RamDigest save_ram_image(int ram_fd, const std::filesystem::path& to);

// The digest of the image in `file` under `algorithm` (a name in
// kRamDigestAlgorithms, else gondolin::Error (Usage)). Throws
// gondolin::Error (Io) if the file cannot be read.
RamDigest ram_image_digest(const std::filesystem::path& file, std::string_view algorithm);

}  // namespace gondolin::vm
