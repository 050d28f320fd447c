// eth0 at boot: the virtio-net driver when the host gave the VM a network
// device, then the guest's own DHCP client (busybox udhcpc) against the
// host's stack, which sets the address, route, MTU and /etc/resolv.conf.
#pragma once

#include <string>

namespace gondolin::agent {

// udhcpc running on eth0 in the background. Started from the initramfs
// before the root file system is mounted, so the DHCP exchange overlaps the
// rest of the boot; the child keeps the initramfs as its root across
// switch_root, and so do the script and lease file it uses.
struct DhcpRun {
  int pid = -1;
  int initramfs_root = -1;  // O_PATH descriptor to read the lease after switch_root
  std::string error;        // set if it could not even start
};

// Brings eth0 up and starts udhcpc. Call while "/" is still the initramfs.
DhcpRun start_dhcp();
// Waits for udhcpc (bounded) and applies its lease to eth0, the default route
// and /etc/resolv.conf. Call in the final root. Returns "" or what went wrong.
std::string finish_dhcp(DhcpRun& run);

}  // namespace gondolin::agent
