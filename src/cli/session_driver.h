// Connects a guest process to this terminal: output to stdout/stderr, stdin
// (optionally), signals, and window size. Used by exec, bash and attach.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gondolin/exec.h"

namespace gondolin::cli {

struct DriveOptions {
  bool forward_stdin = false;
  bool tty = false;      // the guest side is a pty: raw mode here, resize follows
  double timeout_s = 0;  // only for the "timed out" message
  // A stop signal's grace ran out: kill what runs the command (see signal_watch.h).
  std::function<void()> force_stop;
  // In raw mode, this byte typed on stdin leaves the command running and ends
  // the driver with kExitDetached ("[gondolin] detached").
  std::optional<char> detach_key;
};

// A running command as the driver sees it: a local Process or one attached
// through another process's session socket.
class InteractiveCommand {
 public:
  virtual ~InteractiveCommand() = default;
  virtual std::optional<OutputChunk> read() = 0;
  virtual void write_stdin(std::string_view data) = 0;
  virtual void close_stdin() = 0;
  virtual void resize(std::uint16_t rows, std::uint16_t cols) = 0;
  virtual void send_signal(int signo) = 0;
  virtual ExitStatus wait() = 0;
  // Stops talking to the command without ending it; wakes a blocked read().
  virtual void detach() {}
};

template <typename T>
class CommandAdapter : public InteractiveCommand {
 public:
  explicit CommandAdapter(T& t) : t_(t) {}
  std::optional<OutputChunk> read() override { return t_.read(); }
  void write_stdin(std::string_view data) override { t_.write_stdin(data); }
  void close_stdin() override { t_.close_stdin(); }
  void resize(std::uint16_t rows, std::uint16_t cols) override { t_.resize(rows, cols); }
  void send_signal(int signo) override { t_.send_signal(signo); }
  ExitStatus wait() override { return t_.wait(); }
  void detach() override {
    if constexpr (requires(T & t) { t.detach(); }) t_.detach();
  }

 private:
  T& t_;
};

// What `bash` and `attach` run without `-- CMD`: a login bash, or a login
// /bin/sh where the image has no bash.
std::vector<std::string> login_shell_argv();

// Runs until the process ends; returns the exit status gondolin should exit with.
int drive_process(InteractiveCommand& process, const DriveOptions& options);

}  // namespace gondolin::cli
