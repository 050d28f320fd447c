// A start's own copy of a boot template's RAM, for VMs whose RAM must be
// shared with a vhost-user back-end (virtio-fs mounts): such RAM cannot be a
// private copy-on-write mapping of the template, because the back-end would
// not see the guest's writes. The copy is an unnamed file in memory (memfd),
// gone with the last descriptor; only the template's data extents are
// copied (util/sparse_copy; its holes, the RAM the guest never touched,
// stay holes).
#pragma once

#include <filesystem>

#include "util/unique_fd.h"

namespace gondolin::vm {

// A memfd of `file`'s size and contents. Throws gondolin::Error (Io).
UniqueFd copy_ram_to_memfd(const std::filesystem::path& file);

}  // namespace gondolin::vm
