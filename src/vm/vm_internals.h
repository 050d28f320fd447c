// Library-internal ways to make a Vm that the public API does not offer:
// tests and benchmarks choose the egress handlers of the guest's TCP flows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gondolin/vm.h"
#include "net/egress_factory.h"

namespace gondolin {

struct VmHooks {
  net::EgressFactory egress;  // decides every guest TCP flow; empty: refuse all
  // Replaces gondolin's network with these QEMU arguments (a -netdev and its
  // device), so benchmarks can compare against QEMU's own user networking.
  std::vector<std::string> qemu_network_args;
  std::uint16_t mtu = 0;  // the guest's MTU on gondolin's network; 0: the default
  // More QEMU arguments (devices without fds), e.g. a virtio-9p export that a
  // benchmark compares the file system against.
  std::vector<std::string> qemu_extra_args;
};

struct VmInternals {
  static Vm create(VmOptions options, VmHooks hooks);
  static Vm create(VmOptions options, net::EgressFactory egress) {
    return create(std::move(options), VmHooks{std::move(egress), {}, 0, {}});
  }
};

}  // namespace gondolin
