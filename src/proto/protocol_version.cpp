// gondolin::agent_protocol_version (include/gondolin/version.h).
#include "proto/protocol_version.h"

#include "gondolin/version.h"

namespace gondolin {

unsigned agent_protocol_version() { return proto::kProtocolVersion; }

}  // namespace gondolin
