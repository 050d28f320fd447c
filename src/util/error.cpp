#include "gondolin/error.h"

namespace gondolin {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Usage: return "usage";
    case ErrorKind::Image: return "image";
    case ErrorKind::Qemu: return "qemu";
    case ErrorKind::Guest: return "guest";
    case ErrorKind::Policy: return "policy";
    case ErrorKind::Io: return "io";
    case ErrorKind::Internal: return "internal";
  }
  return "unknown";
}

}  // namespace gondolin
