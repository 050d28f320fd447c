// Connects a guest process to this terminal: output to stdout/stderr, stdin
// (optionally), signals, and window size. Used by exec, bash and attach.
#pragma once

#include <string>

#include "gondolin/exec.h"

namespace gondolin::cli {

struct DriveOptions {
  bool forward_stdin = false;
  bool tty = false;  // the guest side is a pty: raw mode here, resize follows
  double timeout_s = 0;  // only for the "timed out" message
};

// Signals the driver forwards must be blocked in every thread before any
// thread starts; call this first thing in main.
void block_forwarded_signals();

// Runs until the process ends; returns the exit status gondolin should exit with.
int drive_process(Process& process, const DriveOptions& options);

}  // namespace gondolin::cli
