// The guest's writable root layer on disk (RootfsMode::Cow).
//
// A sparse file, formatted as ext4 here on the host (mkfs.ext4 takes a few
// milliseconds on an empty sparse file, the guest would take seconds under
// TCG), attached as a second virtio-blk device with serial "gondolin-upper"
// and mounted by the agent as the overlay's upper layer. The host pays only
// for blocks the guest writes; the guest mounts it with `discard`, so deleted
// files give their blocks back.
//
// Invariants: each VM owns its disk alone, in a 0700 directory of its own
// under $XDG_CACHE_HOME/gondolin/disks named "<owner pid>-<random>"; the
// directory goes when the WritableDisk does, and one left behind by a process
// that died (SIGKILL) is removed by the next disk created.
#pragma once

#include <cstdint>
#include <filesystem>

namespace gondolin::vm {

class WritableDisk {
 public:
  static constexpr const char* kFileName = "rootfs-rw.img";
  static constexpr const char* kSerial = "gondolin-upper";
  static constexpr std::uint64_t kMinBytes = std::uint64_t{64} << 20;
  static constexpr std::uint64_t kMaxBytes = std::uint64_t{16} << 40;

  // A fresh, empty disk of `size_bytes`. Throws gondolin::Error.
  static WritableDisk create(std::uint64_t size_bytes);
  // A private copy of `source` (a snapshot's disk): a reflink where the host
  // file system allows, else a copy of its data ranges. Throws gondolin::Error.
  static WritableDisk copy_of(const std::filesystem::path& source);

  WritableDisk(WritableDisk&& other) noexcept;
  WritableDisk& operator=(WritableDisk&& other) noexcept;
  WritableDisk(const WritableDisk&) = delete;
  WritableDisk& operator=(const WritableDisk&) = delete;
  ~WritableDisk();

  std::filesystem::path path() const { return dir_ / kFileName; }
  // Copies the disk to `dest`, which must not exist. Only while QEMU is not
  // writing (paused after a completed migration, or gone).
  void copy_to(const std::filesystem::path& dest) const;

 private:
  explicit WritableDisk(std::filesystem::path dir) : dir_(std::move(dir)) {}
  static WritableDisk make_dir();

  std::filesystem::path dir_;
};

}  // namespace gondolin::vm
