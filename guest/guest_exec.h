// State of one running exec inside the agent.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/control_protocol.h"

namespace gondolin::agent {

// An fd we watch with epoll, remembering the event mask last installed.
struct WatchedFd {
  int fd = -1;
  std::uint32_t mask = 0;
  bool open() const { return fd >= 0; }
};

struct GuestExec {
  std::uint32_t id = 0;
  pid_t pid = -1;
  bool pty = false;
  bool started = false;  // exec succeeded; ExecStarted sent
  bool failed = false;   // Error sent; waiting only for the reap
  bool exited = false;
  int wait_status = 0;

  WatchedFd out;     // stdout pipe or pty master
  WatchedFd err;     // stderr pipe
  WatchedFd in;      // stdin pipe or pty master dup
  WatchedFd status;  // exec-status pipe

  // Bytes the host still lets us send (stdout and stderr together).
  std::uint32_t output_credit = proto::kInitialWindow;
  // Stdin bytes received from the host and not yet written to the child.
  std::string stdin_pending;
  bool stdin_eof_requested = false;
  // A pty may still hold output that the line discipline has not flushed when
  // the child exits; we wait this long for EIO before giving up on it.
  std::optional<std::chrono::steady_clock::time_point> pty_drain_deadline;
};

// The environment a command starts with: sane defaults, overridden by the
// request's KEY=VALUE entries.
std::vector<std::string> build_environment(const std::vector<std::string>& requested, bool pty);

}  // namespace gondolin::agent
