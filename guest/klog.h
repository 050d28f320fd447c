// Agent diagnostics go to the kernel log, which the host captures from the
// serial console; stdout/stderr of PID 1 are not connected to anything useful.
#pragma once

namespace gondolin::agent {

void klog_open();
[[gnu::format(printf, 1, 2)]] void klog(const char* fmt, ...);

}  // namespace gondolin::agent
