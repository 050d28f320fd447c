// QEMU's command line, derived from VM options only (pure; unit-tested).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "gondolin/vm.h"

namespace gondolin::vm {

struct QemuLaunch {
  std::filesystem::path qemu_binary;
  Accel accel = Accel::Tcg;  // never Auto here
  std::string machine = "microvm";
  std::uint32_t memory_mib = 512;
  std::uint32_t cpus = 1;
  std::filesystem::path kernel, initrd, rootfs;
  std::string cmdline;                   // from the image manifest
  std::optional<std::uint64_t> tsc_khz;  // microvm under TCG needs it to boot
  int control_fd = -1;  // descriptor numbers as the QEMU child sees them
  int console_fd = -1;
};

// Throws gondolin::Error (Usage) for options QEMU would reject less clearly.
std::vector<std::string> build_qemu_argv(const QemuLaunch& launch);

}  // namespace gondolin::vm
