// What a snapshot directory records besides the VM state itself: enough to
// restart QEMU identically (machine, memory, devices), to refuse a snapshot
// that cannot be resumed here (other image, QEMU or agent version), and to
// describe the session (network policy and mounts, secret names only).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gondolin/vfs.h"
#include "net/ip_address.h"
#include "util/ram_digest.h"

namespace gondolin::session {

// The session's network as a snapshot records it: what a resumer without
// flags of its own continues with. Never a secret value or SSH credential.
struct SnapshotNetwork {
  bool enabled = false;
  std::vector<std::string> allow_hosts;
  bool allow_all_hosts = false;
  std::vector<std::string> deny_hosts;  // live denials included
  std::vector<std::string> allow_internal_hosts;
  std::string dns = "synthetic";             // "synthetic", "trusted" or "open"
  std::vector<std::string> ssh_allow_hosts;  // as --ssh-allow-host takes them
  // eth0's MAC (52:54:00:xx:xx:xx in the file), which a resume keeps (the
  // guest has it already); absent in older snapshots, whose resumes draw a
  // new one.
  std::optional<net::Mac> guest_mac;
};

struct SnapshotManifest {
  static constexpr int kSchemaVersion = 1;
  // QEMU's state: zstd-compressed where it holds the RAM (kStateFile), as
  // QEMU wrote it where the RAM is in kRamFile (kRawStateFile: device state
  // only, read at every resume without a decompressor).
  static constexpr const char* kStateFile = "state.zst";
  static constexpr const char* kRawStateFile = "state";
  // Mount i's FUSE server state (node ids the guest holds, open files) is in
  // "fs<i>.state" next to the manifest; mounts_json describes the mounts.
  static std::string mount_state_file(std::size_t i) { return "fs" + std::to_string(i) + ".state"; }
  // A memory mount's files (SavableContents) are in "fs<i>.files".
  static std::string mount_files_file(std::size_t i) { return "fs" + std::to_string(i) + ".files"; }

  std::string id;
  std::string created;
  std::string image_id;
  std::string image_name;
  std::string image_manifest_sha256;
  std::uint32_t memory_mib = 0;
  std::uint32_t cpus = 0;
  std::string machine;
  std::string accel;
  std::string hostname;
  // The guest's root writes: "cow" (then the disk is in kDiskFile, of
  // rootfs_size bytes), "memory" (in the state) or "readonly". Snapshots
  // older than the key are "memory".
  std::string rootfs_mode = "memory";
  std::uint64_t rootfs_size = 0;
  static constexpr const char* kDiskFile = "rootfs-rw.img";
  std::string qemu_version;
  std::string gondolin_version;
  std::uint32_t agent_protocol = 0;
  std::string state_file = kStateFile;  // kStateFile or kRawStateFile
  std::uint64_t state_size = 0;
  std::string state_sha256;
  // A VM whose RAM is our own (virtio-fs: vm/ram_image.h) keeps it out of
  // the state, in the sparse RAM image kRamFile of memory_mib MiB, and
  // ram_digest is its digest (the file says {"crc32c": "…"}; older
  // gondolins wrote "sha256"). Empty: the RAM is in the state.
  static constexpr const char* kRamFile = "ram";
  RamDigest ram_digest;
  std::uint64_t ram_stored_bytes = 0;  // what the image takes on disk
  double save_seconds = 0;
  std::vector<std::pair<std::string, std::string>> env;  // the VM's base environment
  SnapshotNetwork network;
  std::string mounts_json = "[]";
  // Transports of the file system slots after the mounts ("virtiofs",
  // "serial" in the file): a VM started from a boot template has the
  // template's slots.
  std::vector<vfs::FsTransport> spare_mount_slots;
  static constexpr std::size_t kMaxMountSlots = 16;
  // vm::kDeviceLayout of the VM saved (resume refuses newer ones); 1 in
  // snapshots older than the key.
  std::uint32_t device_layout = 1;
  std::vector<std::string> secret_names;
  // Placeholders are random tokens the guest already holds (not secrets): a
  // resume must keep them so the guest's requests still get substituted.
  std::vector<std::pair<std::string, std::string>> secret_placeholders;
  // Secrets removed while the session ran (name, placeholder): the guest may
  // still hold the placeholders, which stay refused after a resume.
  std::vector<std::pair<std::string, std::string>> revoked_placeholders;

  // Strict; throws gondolin::Error (Usage) naming the problem and the file.
  static SnapshotManifest parse(const std::string& text, const std::string& origin);
  std::string to_json() const;
};

}  // namespace gondolin::session
