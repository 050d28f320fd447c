// PID 1 boot work: everything between the kernel handing over and the agent
// serving the control port. Kept minimal because it is on every cold start.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "network_setup.h"

namespace gondolin::agent {

struct BootResult {
  bool ok = false;
  std::string error;            // what failed, for the kernel log
  std::string report;           // how long each boot phase took, for the host's logs
  bool network = false;         // a virtio-net device is present (its driver is loaded)
  bool read_only_root = false;  // make / read-only once the agent's boot files are written
  DhcpRun dhcp;                 // when `network`: the DHCP client started during boot
};

// Mounts the pseudo filesystems, loads modules, mounts the read-only root with
// an overlay on top (see root_layers.h) and switches into it.
BootResult boot_as_init();

// Mounts that belong in the final root (after switch_root).
void mount_runtime_filesystems();

// Polls until `path` exists (devices and interfaces appear asynchronously).
bool wait_for_path(const std::string& path, std::chrono::milliseconds timeout);

std::uint64_t monotonic_ns();
std::uint64_t boottime_ns();

}  // namespace gondolin::agent
