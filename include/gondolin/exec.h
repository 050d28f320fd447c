// Running commands in a VM: options, results, and a streaming process handle.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gondolin/guest_user.h"

namespace gondolin {

// What to run: an argv executed directly (searched in the guest's PATH), or a
// shell string run as `/bin/sh -lc STRING`.
class Command {
 public:
  static Command argv(std::vector<std::string> args) { return Command(std::move(args)); }
  static Command shell(std::string script) { return Command({"/bin/sh", "-lc", std::move(script)}); }
  const std::vector<std::string>& args() const { return args_; }

 private:
  explicit Command(std::vector<std::string> args) : args_(std::move(args)) {}
  std::vector<std::string> args_;
};

struct ExecOptions {
  std::vector<std::pair<std::string, std::string>> env;  // added to the VM's environment
  std::string cwd;                     // default: the image's working directory (OCI WorkingDir), else "/"
  std::optional<GuestUser> user;       // default: the image's user (OCI User), else root
  bool pty = false;                    // run on a pseudo-terminal
  std::uint16_t rows = 24, cols = 80;  // initial pty size
  bool stdin = false;                  // open a stdin pipe (Process::write_stdin); otherwise /dev/null
  std::string stdin_data;              // for Vm::exec: written to stdin, then closed
  std::optional<std::chrono::milliseconds> timeout;  // SIGKILL the command after this
};

struct ExitStatus {
  int exit_code = 0;       // meaningful when signal == 0
  int signal = 0;          // terminating signal, 0 if the command exited
  bool timed_out = false;  // killed because ExecOptions::timeout passed
  // Set when the command never ran: not found (exit 127), not executable (126),
  // or its working directory is unusable (125).
  std::string start_error;

  // Shell convention: the exit code, or 128 + signal.
  int shell_status() const { return signal ? 128 + signal : exit_code; }
};

struct ExecResult : ExitStatus {
  std::string stdout_data;
  std::string stderr_data;
};

enum class OutputStream { Stdout, Stderr };

struct OutputChunk {
  OutputStream stream = OutputStream::Stdout;
  std::string data;
};

class Process;
namespace detail {
struct ProcessState;
Process make_process(std::shared_ptr<ProcessState> state);
}  // namespace detail

// A command running in a VM. Output is pulled with read(); the guest may only
// run ahead of the reader by a fixed window, so a slow reader throttles the
// guest instead of growing memory. Safe to use from any one thread (stdin may
// be written from a second thread).
class Process {
 public:
  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  ~Process();  // kills the command if it still runs

  // Blocks for the next output chunk; nullopt once all output has been read.
  std::optional<OutputChunk> read();
  // Like read() but gives up after `timeout`; sets `ended` when output is over.
  std::optional<OutputChunk> read_for(std::chrono::milliseconds timeout, bool& ended);

  // Blocks while the guest's stdin window is full. Throws if stdin is closed.
  void write_stdin(std::string_view data);
  void close_stdin();
  void resize(std::uint16_t rows, std::uint16_t cols);
  void send_signal(int signo);

  // Waits for the exit status (reading and discarding any unread output).
  ExitStatus wait();
  std::uint32_t id() const;

 private:
  friend Process detail::make_process(std::shared_ptr<detail::ProcessState>);
  explicit Process(std::shared_ptr<detail::ProcessState> state);
  std::shared_ptr<detail::ProcessState> state_;
};

}  // namespace gondolin
