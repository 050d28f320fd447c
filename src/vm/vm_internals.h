// Library-internal ways to make a Vm that the public API does not offer:
// tests and benchmarks choose the egress handlers of the guest's TCP flows.
#pragma once

#include "gondolin/vm.h"
#include "net/egress_factory.h"

namespace gondolin {

struct VmInternals {
  // Vm::create with `egress` deciding every guest TCP flow (empty: refuse all).
  static Vm create(VmOptions options, net::EgressFactory egress);
};

}  // namespace gondolin
