// Which virtio devices the machine has, by virtio device id, as the bus
// driver lists them in sysfs (after the "mmio" or "pci" modules are loaded).
#pragma once

namespace gondolin::agent {

inline constexpr unsigned kVirtioNet = 1;
inline constexpr unsigned kVirtioFs = 26;

bool has_virtio_device(unsigned device_id);

}  // namespace gondolin::agent
