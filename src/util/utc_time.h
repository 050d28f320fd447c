// The one way gondolin writes wall-clock time: RFC 3339 in UTC.
#pragma once

#include <string>

namespace gondolin {

// "2026-12-04T13:21:48Z": manifests, session records, snapshots.
std::string now_rfc3339();
// "2026-12-04T13:21:48.123Z": audit log lines (egress, SSH).
std::string now_rfc3339_ms();

}  // namespace gondolin
