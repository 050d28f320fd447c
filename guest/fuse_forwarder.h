// The relay between the guest kernel's FUSE device and the host: requests
// read from /dev/fuse go to the mount's virtio-serial port unchanged, replies
// from the port are cut at their own length fields and written back to
// /dev/fuse one whole message at a time. The host does all the file system
// work; this loop only moves bytes.
#pragma once

#include <cstddef>

namespace gondolin::agent {

// Runs until the file system is unmounted (or the stream from the host is
// corrupt). `max_io` is the negotiated largest read/write payload.
// Returns the process exit status to use.
int run_fuse_forwarder(int fuse_fd, int port_fd, std::size_t max_io);

}  // namespace gondolin::agent
