// Choosing QEMU's accelerator. `auto` must never hang: on hosts where
// /dev/kvm exists but guests do not run (nested PVM), it picks TCG.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "gondolin/vm.h"

namespace gondolin::vm {

struct AccelChoice {
  Accel accel = Accel::Tcg;
  std::string reason;
};

// Inputs of the decision, separated out so tests can drive every branch.
struct AccelFacts {
  bool kvm_device_usable = false;  // /dev/kvm opens read-write
  std::string kvm_device_error;
  bool pvm_host = false;                // /sys/module/kvm_pvm exists
  std::optional<bool> probe_ran_guest;  // a tiny KVM guest reached HLT (nullopt: not probed)
};

AccelFacts gather_accel_facts(bool run_probe);
AccelChoice decide_accel(Accel requested, const AccelFacts& facts);

// Full decision for this host (probe results cached per boot of the host).
AccelChoice choose_accel(Accel requested);

// Host TSC frequency in kHz (for microvm under TCG), if it can be found.
std::optional<std::uint64_t> host_tsc_khz();

}  // namespace gondolin::vm
