// The CLI's one signal thread, alive from the start of main to its end.
//
// Every signal below is blocked in every thread (block_handled_signals(),
// first thing in main, before any thread exists) and taken here with
// sigtimedwait, so no signal handler ever runs and no other thread is
// interrupted.
//
// Invariant: gondolin honours SIGINT, SIGTERM and SIGHUP within about a
// second, whatever the guest or our own io thread does:
//   1. the signal goes to the running command (a route is installed), which
//      usually ends it, and the CLI exits with the command's status (128+N);
//   2. if the command has not ended kStopGrace later (or a second such
//      signal comes), the route's force_stop kills what runs it (QEMU);
//   3. if the CLI still has not finished kExitGrace after that, this thread
//      restores the terminal, prints one line and _exits with 128+N (QEMU
//      dies with us: PR_SET_PDEATHSIG).
// Without a route (booting, closing) steps 1 and 2 are skipped.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace gondolin::cli {

struct SignalRoute {
  std::function<void(int signo)> forward;  // to the guest command
  std::function<void()> resize;            // SIGWINCH
  std::function<void()> force_stop;        // the command did not end in time
};

class SignalWatch {
 public:
  static constexpr std::chrono::milliseconds kStopGrace{600};
  static constexpr std::chrono::milliseconds kExitGrace{350};

  // Blocks the handled signals (and SIGPIPE) in the calling thread; call
  // first thing in main so every later thread inherits the mask.
  static void block_handled_signals();
  // Starts the thread (once); it lives until the process exits.
  static void start();

  // While a command runs, signals go to it. Only one route at a time.
  static void set_route(SignalRoute route);
  static void clear_route();
  // The stop signal received so far (SIGINT, SIGTERM, SIGHUP), or 0.
  static int stop_signal();
  // "gondolin: stopped by SIGTERM", saying also whether step 2 killed the VM.
  static std::string stop_report();
  // Terminal state to put back before an emergency exit (raw mode).
  static void remember_terminal(int fd, const void* termios_state);
  static void forget_terminal();
};

}  // namespace gondolin::cli
