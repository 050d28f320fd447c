// Starting a command for an exec request: fork, wire up stdio (pipes or a pty),
// and report exec failures back through a close-on-exec pipe.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace gondolin::agent {

struct SpawnRequest {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // complete environment, KEY=VALUE
  std::string cwd;
  bool as_user = false;  // switch to uid:gid (groups: gid only) before exec
  unsigned uid = 0, gid = 0;
  bool pty = false;
  bool stdin_pipe = false;
  unsigned short rows = 24;
  unsigned short cols = 80;
};

struct SpawnedChild {
  pid_t pid = -1;
  int stdin_fd = -1;     // pipe write end, or the pty master (dup) when pty
  int stdout_fd = -1;    // pipe read end, or the pty master
  int stderr_fd = -1;    // pipe read end; -1 with a pty
  int status_fd = -1;    // EOF: exec succeeded; 8 bytes {stage, errno}: failed
  int error_number = 0;  // set when pid == -1
};

// Record written by the child to status_fd when it cannot run the command.
struct SpawnFailure {
  int stage;  // proto::ErrorStage
  int error_number;
};

SpawnedChild spawn_child(const SpawnRequest& req);

}  // namespace gondolin::agent
