// The last steps of every root filesystem gondolin builds: its own files in
// the tree, then the tree as an ext4 image.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "image/layer_unpacker.h"

namespace gondolin {

// Runs argv, throwing gondolin::Error (Image) naming `what` if it fails.
using CommandRunner = std::function<void(const std::vector<std::string>& argv, const std::string& what)>;

// What gondolin puts into every root, as a tar layer (applied with the
// unpacker's checks, so an image whose /etc is a symlink is refused rather
// than written through): /etc/hostname and /etc/hosts, no /etc/resolv.conf
// (the agent writes its own), the overlay's mount points, the kernel's
// mount points, and /etc/gondolin/init-extra when `init_extra` is set.
std::string gondolin_root_layer(const std::string& init_extra);

// `mke2fs -d tree` into `image` (written as image.tmp, then renamed), sized
// for the contents plus `free_mib`; then the owners and xattrs the unpacker
// could not set (not root) are set in the image with debugfs.
void write_ext4_image(const std::filesystem::path& tree, const std::filesystem::path& image, unsigned free_mib,
                      const LayerUnpacker* fixups, const CommandRunner& run);

}  // namespace gondolin
