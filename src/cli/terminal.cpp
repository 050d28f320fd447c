#include "cli/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/signal_watch.h"

namespace gondolin::cli {

std::optional<WindowSize> terminal_size(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0) return std::nullopt;
  return WindowSize{ws.ws_row, ws.ws_col};
}

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  if (!::isatty(fd) || ::tcgetattr(fd, &saved_) != 0) return;
  termios raw = saved_;
  ::cfmakeraw(&raw);
  if (::tcsetattr(fd, TCSANOW, &raw) != 0) return;
  active_ = true;
  SignalWatch::remember_terminal(fd, &saved_);  // an emergency exit restores it too
}

RawTerminal::~RawTerminal() {
  if (!active_) return;
  SignalWatch::forget_terminal();
  ::tcsetattr(fd_, TCSANOW, &saved_);
}

}  // namespace gondolin::cli
