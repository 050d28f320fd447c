// Starting host programs (QEMU, apt-get, mmdebstrap, ...) with exact control
// over the descriptors they inherit.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gondolin {

struct SpawnSpec {
  std::vector<std::string> argv;
  // Descriptors the child gets: {parent_fd, child_fd}. Everything else except
  // 0-2 is closed in the child.
  std::vector<std::pair<int, int>> fds;
  int stdin_fd = -1;                            // -1: /dev/null
  int stdout_fd = -1;                           // -1: inherit
  int stderr_fd = -1;                           // -1: inherit
  bool die_with_parent = true;                  // SIGKILL the child when this thread's process dies
  std::optional<std::vector<std::string>> env;  // nullopt: inherit
  std::filesystem::path cwd;
};

// Forks and execs. Throws gondolin::Error (Io) naming the program if it cannot
// be started (e.g. not found), so callers never see a half-started child.
pid_t spawn_process(const SpawnSpec& spec);

// Blocking waitpid; returns the raw wait status.
int wait_process(pid_t pid);

// Quotes a string for /bin/sh (single quotes; embedded ones escaped).
std::string shell_quote(const std::string& s);

// "exited with status 3", "killed by signal 9 (Killed)".
std::string describe_wait_status(int status);

struct CommandResult {
  int wait_status = 0;
  std::string output;  // stdout+stderr, truncated to the last `keep_output` bytes
  bool ok() const;
};

// Runs a program to completion, optionally appending its output to a log file.
CommandResult run_command(const std::vector<std::string>& argv, const std::filesystem::path& log_file = {},
                          std::size_t keep_output = 64 * 1024, const std::filesystem::path& cwd = {});

}  // namespace gondolin
