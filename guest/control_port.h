#pragma once

#include <chrono>
#include <string>

namespace gondolin::agent {

// Finds the virtio-serial port with the given name (without udev, by reading
// /sys/class/virtio-ports/*/name) and opens it non-blocking. Waits up to
// `timeout` for the device to appear. Returns -1 if it never does.
int open_named_port(const std::string& name, std::chrono::milliseconds timeout);

}  // namespace gondolin::agent
