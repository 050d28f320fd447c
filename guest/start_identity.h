// What makes one start of a VM its own, applied from the host's Config frame
// on every boot and every resume: the wall clock, the kernel's random state,
// the hostname, eth0's MAC address and /etc/machine-id. A VM resumed from a
// boot template (or twice from one snapshot) shares the template's memory;
// after this it shares no clock, CRNG output, MAC or machine id with its twins.
#pragma once

#include "proto/control_protocol.h"

namespace gondolin::agent {

// Applies `cfg` to the running guest. Best effort: a step that fails is
// logged to the kernel log and the rest still happen.
void apply_start_identity(const proto::Config& cfg);

}  // namespace gondolin::agent
