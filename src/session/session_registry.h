// The per-user registry of running sessions: one JSON file and one socket per
// VM under $XDG_CACHE_HOME/gondolin/sessions/ (directory 0700, files 0600).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gondolin/session.h"

namespace gondolin::session {

std::filesystem::path sessions_dir();  // created 0700 on first use

// A random RFC 4122 version-4 uuid.
std::string new_session_id();

// The registry entry of this process's VM; removed again on destruction.
class SessionRecord {
 public:
  SessionRecord(SessionInfo info);
  ~SessionRecord();
  SessionRecord(const SessionRecord&) = delete;
  SessionRecord& operator=(const SessionRecord&) = delete;
  const SessionInfo& info() const { return info_; }

 private:
  SessionInfo info_;
};

// Start time of a process in clock ticks since boot (/proc/PID/stat), 0 if gone:
// with the pid it identifies a process even after pid reuse.
unsigned long long process_start_time(pid_t pid);

}  // namespace gondolin::session
