// Helpers for integration tests: run the real gondolin CLI, watch processes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gondolin::testing {

struct CliResult {
  int exit_code = -1;  // -1: killed by a signal (see term_signal)
  int term_signal = 0;
  std::string out;
  std::string err;
};

struct CliOptions {
  std::string stdin_data;
  std::map<std::string, std::string> env;  // added to (or replacing in) the test's environment
  std::vector<std::string> unset_env;
  std::chrono::seconds timeout{300};
  // Runs gondolin through this command, e.g. {"ip", "netns", "exec", NS}.
  std::vector<std::string> wrapper;
};

std::filesystem::path gondolin_binary();

// Runs `gondolin ARGS...`, feeding stdin and capturing stdout/stderr separately.
CliResult run_gondolin(const std::vector<std::string>& args, const CliOptions& options = {});

// A private temporary directory, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Children of `pid` (by scanning /proc), e.g. to find gondolin's QEMU.
std::vector<pid_t> child_pids(pid_t pid);
bool process_alive(pid_t pid);
// Peak resident set size (VmHWM) of a live process, in KiB; nullopt if gone.
std::optional<long> peak_rss_kib(pid_t pid);
// A host file's whole contents ("" if it cannot be read), and its
// replacement (parent directories made as needed).
std::string slurp(const std::filesystem::path& p);
void spit(const std::filesystem::path& p, const std::string& contents);
// Runs a shell command on the host and returns its stdout (throws on failure).
std::string host_sh(const std::string& command);

// Python (no single quotes, so it fits in sh -c '...') that imports socket,
// sys and time and defines open_nonblocking(n): n non-blocking connects to
// 93.184.216.34:80, an address egress handles, returned as a list (fewer,
// with the reason printed, if the guest runs out of sockets).
extern const char* const kPythonOpenNonblocking;

}  // namespace gondolin::testing
