// The initramfs of every image: the agent (compiled into gondolin) as /init,
// busybox, and the kernel modules a spec lists plus their dependencies, each
// tagged `boot`, `mmio`, `pci`, `net` or `fs` (when the agent loads it).
// Written as an uncompressed cpio (newc); compressed modules (.ko.xz, .zst,
// .gz) are stored decompressed, so the guest needs no in-kernel decompression.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "image/rootfs_tree.h"

namespace gondolin {

// `kernel_tree` is the unpacked kernel package (depmod is run on it when its
// modules have no index yet). Throws gondolin::Error (Image) naming a module
// the package lacks.
std::string build_initramfs(const std::filesystem::path& kernel_tree, const std::string& release,
                            const std::filesystem::path& busybox, const std::vector<std::string>& modules,
                            const CommandRunner& run);

}  // namespace gondolin
