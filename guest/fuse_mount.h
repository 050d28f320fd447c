// Mounting a host-served FUSE file system: module, mount point, /dev/fuse,
// mount(2), and a forked forwarder process that relays between /dev/fuse
// and the mount's virtio-serial port. The forwarder is its own process so
// neither the agent's loop nor anything the agent does on the mount (file
// operations, exec of a program stored there) can deadlock against it.
// A virtio-fs mount (proto::kMountVirtiofs) needs none of that: the guest
// kernel reaches the host's server through the vhost-user-fs device.
#pragma once

#include "proto/mount_messages.h"

namespace gondolin::agent {

proto::MountResultMsg mount_fuse(const proto::MountRequest& request);

}  // namespace gondolin::agent
