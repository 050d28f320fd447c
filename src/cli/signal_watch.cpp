#include "cli/signal_watch.h"

#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace gondolin::cli {
namespace {

using Clock = std::chrono::steady_clock;

sigset_t handled_signals() {
  sigset_t set;
  ::sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2}) ::sigaddset(&set, s);
  return set;
}

bool is_stop_signal(int sig) { return sig == SIGINT || sig == SIGTERM || sig == SIGHUP; }

struct WatchState {
  std::mutex mutex;
  std::optional<SignalRoute> route;
  std::atomic<int> stop_signal{0};
  std::optional<Clock::time_point> force_at;  // step 2
  std::optional<Clock::time_point> exit_at;   // step 3
  bool vm_killed = false;                     // step 2 ran
  bool terminal_saved = false;
  int terminal_fd = -1;
  termios terminal{};
};

WatchState& state() {
  static WatchState s;
  return s;
}

[[noreturn]] void emergency_exit(WatchState& s) {
  bool raw_terminal = false;
  {
    std::lock_guard lock(s.mutex);
    raw_terminal = s.terminal_saved;
    if (raw_terminal) ::tcsetattr(s.terminal_fd, TCSANOW, &s.terminal);
  }
  std::fprintf(stderr, "%s%s\n", raw_terminal ? "\r\n" : "", SignalWatch::stop_report().c_str());
  std::fflush(stderr);
  ::_exit(128 + s.stop_signal.load());
}

// One received signal: route it, and move the stop deadlines.
void on_signal(WatchState& s, int sig) {
  std::function<void()> call;
  {
    std::lock_guard lock(s.mutex);
    const auto now = Clock::now();
    if (sig == SIGWINCH) {
      if (s.route && s.route->resize) call = s.route->resize;
    } else if (!is_stop_signal(sig)) {
      if (s.route && s.route->forward) call = [f = s.route->forward, sig] { f(sig); };
    } else if (s.stop_signal == 0) {
      s.stop_signal = sig;
      if (s.route && s.route->forward) {
        call = [f = s.route->forward, sig] { f(sig); };
        s.force_at = now + SignalWatch::kStopGrace;
      } else {
        s.force_at = now;
      }
    } else if (!s.exit_at) {
      s.force_at = now;  // a second stop signal: no more patience
    }
  }
  if (call) {
    try {
      call();
    } catch (...) {}
  }
}

// Steps 2 and 3 of the invariant, checked on every tick.
void on_tick(WatchState& s) {
  std::function<void()> force;
  {
    std::lock_guard lock(s.mutex);
    const auto now = Clock::now();
    if (s.force_at && now >= *s.force_at) {
      s.force_at.reset();
      s.exit_at = now + SignalWatch::kExitGrace;
      if (s.route && s.route->force_stop) {
        force = s.route->force_stop;
        s.vm_killed = true;
      }
    }
    if (!force && !(s.exit_at && now >= *s.exit_at)) return;
  }
  if (!force) emergency_exit(s);
  try {
    force();
  } catch (...) {}
}

}  // namespace

void SignalWatch::block_handled_signals() {
  sigset_t set = handled_signals();
  ::sigaddset(&set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void SignalWatch::start() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::thread([] {
      WatchState& s = state();
      const sigset_t set = handled_signals();
      const timespec tick{0, 50 * 1000 * 1000};
      for (;;) {
        int sig = ::sigtimedwait(&set, nullptr, &tick);
        if (sig > 0) on_signal(s, sig);
        on_tick(s);
      }
    }).detach();
  });
}

void SignalWatch::set_route(SignalRoute route) {
  std::lock_guard lock(state().mutex);
  state().route = std::move(route);
}

void SignalWatch::clear_route() {
  std::lock_guard lock(state().mutex);
  state().route.reset();
}

int SignalWatch::stop_signal() { return state().stop_signal.load(); }

std::string SignalWatch::stop_report() {
  WatchState& s = state();
  const char* name = ::sigabbrev_np(s.stop_signal.load());
  bool vm_killed = false;
  {
    std::lock_guard lock(s.mutex);
    vm_killed = s.vm_killed;
  }
  return std::string("gondolin: stopped by SIG") + (name ? name : "?") +
         (vm_killed ? "; the command did not end in time, so its VM was killed" : "");
}

void SignalWatch::remember_terminal(int fd, const void* termios_state) {
  std::lock_guard lock(state().mutex);
  state().terminal_fd = fd;
  std::memcpy(&state().terminal, termios_state, sizeof(termios));
  state().terminal_saved = true;
}

void SignalWatch::forget_terminal() {
  std::lock_guard lock(state().mutex);
  state().terminal_saved = false;
}

}  // namespace gondolin::cli
