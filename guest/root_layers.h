// The guest's root file system: the image's read-only ext4 as the lower
// layer of an overlay, and where the writes go (the host's
// gondolin.rootfs= boot parameter, RootfsMode on the host):
//   cow       upper layer on the virtio-blk disk with serial gondolin-upper
//             (ext4, made by the host), bounded by its size, not by RAM;
//   memory    upper layer on a tmpfs;
//   readonly  tmpfs upper for the agent's own boot files (resolv.conf), then
//             the root mount is made read-only before the first command.
// Disks are found by serial, never by name: /dev/vdX order depends on the bus.
#pragma once

#include <chrono>
#include <string>

namespace gondolin::agent {

enum class RootWrites { Cow, Memory, Readonly };

// "cow", "memory" (also: absent) or "readonly"; false for anything else.
bool parse_root_writes(const std::string& text, RootWrites& out);

// "/dev/vdb" for the virtio disk whose serial is `serial`, or "" after `timeout`.
std::string find_disk_by_serial(const std::string& serial, std::chrono::milliseconds timeout);

// Mounts `root_dev` read-only on /lower, the upper layer on /rw and the
// overlay on /newroot. Returns "" or what failed.
std::string mount_root_layers(const std::string& root_dev, const std::string& root_type, RootWrites writes);

// Makes the (switched) root mount read-only, or writable again for a moment
// (the agent creating a mount point). Returns 0 or errno.
int set_root_read_only(bool read_only);
// Whether the VM runs with RootWrites::Readonly (set_root_read_only(true) succeeded once).
bool root_read_only();

}  // namespace gondolin::agent
