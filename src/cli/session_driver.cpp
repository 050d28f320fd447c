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
#include "cli/terminal.h"
#include "util/logging.h"
#include "util/unique_fd.h"

namespace gondolin::cli {
namespace {

sigset_t forwarded_signals() {
  sigset_t set;
  ::sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2}) ::sigaddset(&set, s);
  return set;
}

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

}  // namespace

void block_forwarded_signals() {
  sigset_t set = forwarded_signals();
  ::sigaddset(&set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int drive_process(InteractiveCommand& process, const DriveOptions& options) {
  std::optional<RawTerminal> raw;
  if (options.tty && ::isatty(STDIN_FILENO) && options.forward_stdin) raw.emplace(STDIN_FILENO);

  UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  std::atomic<bool> stopping{false};

  std::thread signal_thread([&] {
    sigset_t set = forwarded_signals();
    timespec tick{0, 100 * 1000 * 1000};
    while (!stopping) {
      int sig = ::sigtimedwait(&set, nullptr, &tick);
      if (sig <= 0) continue;
      try {
        if (sig == SIGWINCH) {
          if (auto size = terminal_size(STDOUT_FILENO)) process.resize(size->rows, size->cols);
        } else {
          process.send_signal(sig);
        }
      } catch (const std::exception&) {
      }
    }
  });

  std::thread stdin_thread;
  if (options.forward_stdin) {
    stdin_thread = std::thread([&] {
      std::string buf(64 * 1024, '\0');
      try {
        for (;;) {
          pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {stop.get(), POLLIN, 0}};
          if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
          }
          if (fds[1].revents) return;
          ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
          if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
          if (n <= 0) {
            process.close_stdin();
            return;
          }
          process.write_stdin(std::string_view(buf.data(), static_cast<std::size_t>(n)));
        }
      } catch (const std::exception&) {
        // the process ended or the VM went away; the main loop reports it
      }
    });
  }

  auto finish_threads = [&] {
    stopping = true;
    std::uint64_t one = 1;
    ssize_t ignored = ::write(stop.get(), &one, sizeof one);
    (void)ignored;
    if (stdin_thread.joinable()) stdin_thread.join();
    signal_thread.join();
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
