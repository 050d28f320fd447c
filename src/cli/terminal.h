// The host terminal during an interactive session.
#pragma once

#include <termios.h>

#include <cstdint>
#include <optional>

namespace gondolin::cli {

struct WindowSize {
  std::uint16_t rows = 24;
  std::uint16_t cols = 80;
};

std::optional<WindowSize> terminal_size(int fd);

// Puts a terminal into raw mode for its lifetime and always restores it.
class RawTerminal {
 public:
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  bool active() const { return active_; }

 private:
  int fd_;
  bool active_ = false;
  termios saved_{};
};

}  // namespace gondolin::cli
