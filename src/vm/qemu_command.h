// QEMU's command line, derived from VM options only (pure; unit-tested).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "gondolin/image.h"
#include "gondolin/vm.h"

namespace gondolin::vm {

// A device wired to our process through a descriptor QEMU inherits.
struct FdDevice {
  std::vector<std::string> args;  // "{fd}" in any argument becomes the number QEMU sees
  int parent_fd = -1;             // our descriptor to hand over (we keep ownership)
};

// Revisions of the devices a VM gets whose state a snapshot carries (a
// snapshot loads only into the same): 1, virtio-serial with QEMU's default
// 31 ports (64 queues, each an eventfd QEMU's main loop polls on every
// wake-up); 2, as many ports as the VM uses; 3, a NIC without
// VIRTIO_NET_F_GUEST_ANNOUNCE (qemu_command.cpp says why). New VMs get
// kDeviceLayout.
inline constexpr std::uint32_t kDeviceLayout = 3;

struct QemuLaunch {
  std::filesystem::path qemu_binary;
  Accel accel = Accel::Tcg;  // never Auto here
  std::string machine = "microvm";
  std::uint32_t memory_mib = 512;
  std::uint32_t cpus = 1;
  // No kernel: nothing to boot, the state comes in whole (a boot template's
  // RAM already holds the booted kernel; QEMU spends ~0.2 s loading one).
  std::filesystem::path kernel, initrd, rootfs;
  // The guest's writable layer (RootfsMode::Cow); empty: none.
  std::filesystem::path writable_disk;
  std::string rootfs_mode = "memory";    // the agent's gondolin.rootfs= boot parameter
  std::string cmdline;                   // from the image manifest
  std::optional<std::uint64_t> tsc_khz;  // microvm under TCG needs it to boot
  int control_fd = -1;                   // our ends of the control, console and QMP sockets
  int console_fd = -1;
  int qmp_fd = -1;
  // Some device is served by a vhost-user back-end (our virtio-fs mounts):
  // virtio-mmio devices must be modern, and guest RAM shared with us (a
  // shared memory file or our memfd).
  bool vhost_user = false;
  // Guest RAM in this file (boot templates): shared, the guest writes
  // the file (a template being made, or a start's own copy of one);
  // private, the guest sees the file's contents and its writes stay its
  // own, copy-on-write (a template resumed). Migrations from or into a
  // template set x-ignore-shared over QMP, which leaves its RAM out of the
  // state (an incoming one waits with `-incoming defer`).
  std::filesystem::path memory_file;
  bool memory_file_shared = false;
  // Our descriptor of the RAM file, when it has no name (a memfd copy):
  // QEMU opens it as /proc/self/fd/N; memory_file is then ignored.
  int memory_fd = -1;
  // Restore a snapshot: start paused and load the state from incoming_uri,
  // or from incoming_fd (ours; QEMU reads it as `fd:N`) if that is set.
  // Deferred: `-incoming defer`, the URI given later (QemuCommand::incoming_uri).
  std::string incoming_uri;
  int incoming_fd = -1;
  bool incoming_deferred = false;
  std::uint32_t device_layout = kDeviceLayout;
  std::vector<FdDevice> devices;        // network, file systems, ...
  std::vector<std::string> extra_args;  // appended as given (benchmark baselines)
};

struct QemuCommand {
  std::vector<std::string> argv;
  std::vector<std::pair<int, int>> fds;  // {our fd, QEMU's fd number}
  std::string incoming_uri;              // where QEMU loads a state from ("" if it does not)
};

// QEMU's qboot.rom next to `qemu_binary` (or in /usr/share/qemu); empty if
// this QEMU has none (then microvm boots with QEMU's default firmware).
std::filesystem::path microvm_firmware(const std::filesystem::path& qemu_binary);

// The launch of `image` with `o`'s machine shape (no binary, channels or
// devices yet): shared by the VM's start and the boot template key, so the
// key describes the very machine QEMU gets.
QemuLaunch launch_for(const Image& image, const VmOptions& o, Accel accel);

// Throws gondolin::Error (Usage) for options QEMU would reject less clearly.
QemuCommand build_qemu_command(const QemuLaunch& launch);

// "virtio-net" -> "virtio-net-device" on microvm (virtio-mmio), "virtio-net-pci" on q35.
std::string virtio_device(const std::string& machine, const std::string& base);

// The guest's NIC, attached to our network stack through descriptor {fd}.
std::vector<std::string> network_device_args(const std::string& machine, const std::string& mac);

// File system channel `port_name` ("gondolin.fs<N>"): a vhost-user-fs device
// of that tag, or a virtio-serial port of that name, whose other end is {fd}.
std::vector<std::string> mount_device_args(const std::string& machine, const std::string& port_name, bool virtiofs);

}  // namespace gondolin::vm
