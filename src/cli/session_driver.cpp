#include "cli/session_driver.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "cli/exit_codes.h"
#include "cli/signal_watch.h"
#include "cli/terminal.h"
#include "util/unique_fd.h"

namespace gondolin::cli {
namespace {

// Writes everything or reports EPIPE/other errors.
bool write_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Copies this process's stdin to the command until EOF, `stop`, or the detach
// key (only in raw mode, where it cannot be part of a line being typed).
void pump_stdin(InteractiveCommand& process, int stop_fd, std::optional<char> detach_key, std::atomic<bool>& detached) {
  std::string buf(64 * 1024, '\0');
  try {
    for (;;) {
      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {stop_fd, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents) return;
      ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return process.close_stdin();
      std::string_view data(buf.data(), static_cast<std::size_t>(n));
      std::size_t key = detach_key ? data.find(*detach_key) : std::string_view::npos;
      if (key != std::string_view::npos) {
        if (key > 0) process.write_stdin(data.substr(0, key));
        detached = true;
        return process.detach();
      }
      process.write_stdin(data);
    }
  } catch (const std::exception&) {
    // the process ended or the VM went away; the main loop reports it
  }
}

}  // namespace

std::vector<std::string> login_shell_argv() {
  return {"/bin/sh", "-c", "if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l"};
}

int drive_process(InteractiveCommand& process, const DriveOptions& options) {
  std::optional<RawTerminal> raw;
  if (options.tty && ::isatty(STDIN_FILENO) && options.forward_stdin) raw.emplace(STDIN_FILENO);

  UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));

  SignalRoute route;
  route.forward = [&process](int sig) { process.send_signal(sig); };
  if (options.tty)
    route.resize = [&process] {
      if (auto size = terminal_size(STDOUT_FILENO)) process.resize(size->rows, size->cols);
    };
  route.force_stop = options.force_stop;
  SignalWatch::set_route(std::move(route));

  std::atomic<bool> detached{false};
  std::thread stdin_thread;
  if (options.forward_stdin) {
    std::optional<char> detach_key = raw ? options.detach_key : std::nullopt;
    stdin_thread = std::thread([&, detach_key] { pump_stdin(process, stop.get(), detach_key, detached); });
  }

  auto finish_threads = [&] {
    std::uint64_t one = 1;
    ssize_t ignored = ::write(stop.get(), &one, sizeof one);
    (void)ignored;
    if (stdin_thread.joinable()) stdin_thread.join();
    SignalWatch::clear_route();
  };

  ExitStatus status;
  try {
    bool output_closed = false;
    while (auto chunk = process.read()) {
      if (output_closed) continue;
      int fd = chunk->stream == OutputStream::Stdout ? STDOUT_FILENO : STDERR_FILENO;
      if (!write_all(fd, chunk->data) && fd == STDOUT_FILENO) {
        // Our reader went away (`| head`): the guest writer gets the SIGPIPE it would get locally.
        output_closed = true;
        process.send_signal(SIGPIPE);
      }
    }
    status = process.wait();
  } catch (...) {
    finish_threads();
    if (detached) {
      raw.reset();
      std::fprintf(stderr, "\r\n[gondolin] detached\n");
      return kExitDetached;
    }
    // The VM went away after a stop signal: say that, not the VM's last words.
    if (int sig = SignalWatch::stop_signal()) {
      raw.reset();
      std::fprintf(stderr, "%s\n", SignalWatch::stop_report().c_str());
      return 128 + sig;
    }
    throw;
  }
  finish_threads();
  raw.reset();

  if (!status.start_error.empty()) {
    std::fprintf(stderr, "gondolin: %s\n", status.start_error.c_str());
    return status.exit_code;
  }
  if (status.timed_out) {
    std::fprintf(stderr, "gondolin: the command timed out after %g s and was killed\n", options.timeout_s);
    return kExitTimedOut;
  }
  return status.shell_status();
}

}  // namespace gondolin::cli
