#include "klog.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>

namespace gondolin::agent {
namespace {
int g_kmsg = -1;
}

void klog_open() {
  if (g_kmsg < 0) g_kmsg = ::open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
}

void klog(const char* fmt, ...) {
  char buf[512];
  int n = std::snprintf(buf, sizeof buf, "gondolin-agent: ");
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<size_t>(n), fmt, ap);
  va_end(ap);
  if (m < 0) return;
  size_t len = static_cast<size_t>(n) + static_cast<size_t>(m);
  if (len >= sizeof buf) len = sizeof buf - 1;
  int fd = g_kmsg >= 0 ? g_kmsg : STDERR_FILENO;
  ssize_t ignored = ::write(fd, buf, len);
  (void)ignored;
}

}  // namespace gondolin::agent
