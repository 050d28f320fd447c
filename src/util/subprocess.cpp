#include "util/subprocess.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "gondolin/error.h"
#include "util/unique_fd.h"

extern char** environ;

namespace gondolin {
namespace {

[[noreturn]] void child_fail(int report_fd, int err) {
  ssize_t ignored = ::write(report_fd, &err, sizeof err);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

pid_t spawn_process(const SpawnSpec& spec) {
  if (spec.argv.empty()) throw Error(ErrorKind::Internal, "spawn_process: empty argv");
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw Error(ErrorKind::Io, std::string("pipe: ") + std::strerror(errno));
  UniqueFd report_read(report[0]), report_write(report[1]);

  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (spec.env) {
    for (const auto& e : *spec.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) throw Error(ErrorKind::Io, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Keep the report pipe above any descriptor number a mapping may target.
    int rfd = ::fcntl(report_write.get(), F_DUPFD_CLOEXEC, 1000);
    if (rfd < 0) ::_exit(127);
    if (spec.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // parent already gone
    }
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Park every source fd above the targets first so no mapping clobbers another's source.
    std::vector<std::pair<int, int>> parked;
    for (auto [src, dst] : spec.fds) {
      int high = ::fcntl(src, F_DUPFD_CLOEXEC, 1000);
      if (high < 0) child_fail(rfd, errno);
      parked.emplace_back(high, dst);
    }
    int in = spec.stdin_fd >= 0 ? spec.stdin_fd : ::open("/dev/null", O_RDONLY);
    if (in < 0 || ::dup2(in, 0) < 0) child_fail(rfd, errno);
    if (spec.stdout_fd >= 0 && ::dup2(spec.stdout_fd, 1) < 0) child_fail(rfd, errno);
    if (spec.stderr_fd >= 0 && ::dup2(spec.stderr_fd, 2) < 0) child_fail(rfd, errno);
    for (auto [high, dst] : parked)
      if (::dup2(high, dst) < 0) child_fail(rfd, errno);
    // Close everything else we might have inherited (other VMs' sockets...).
    int max_target = 2;
    for (auto [src, dst] : spec.fds) max_target = std::max(max_target, dst);
    for (int fd = 3; fd <= max_target; ++fd) {
      bool wanted = false;
      for (auto [src, dst] : spec.fds) wanted = wanted || dst == fd;
      if (!wanted && fd != rfd) ::close(fd);
    }
    ::close_range(static_cast<unsigned>(max_target) + 1, ~0u, CLOSE_RANGE_CLOEXEC);
    if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) child_fail(rfd, errno);
    if (spec.env) environ = envp.data();
    ::execvp(argv[0], argv.data());
    child_fail(rfd, errno);
  }
  report_write.reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report_read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof child_errno)) {
    wait_process(pid);
    throw Error(ErrorKind::Io, "cannot run " + spec.argv[0] + ": " + std::strerror(child_errno));
  }
  return pid;
}

int wait_process(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

std::string describe_wait_status(int status) {
  if (status == -1) return "was lost (no wait status)";
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = ::strsignal(WTERMSIG(status));
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + (name ? std::string(" (") + name + ")" : "");
  }
  return "stopped unexpectedly";
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out.push_back(c);
  }
  return out + "'";
}

bool CommandResult::ok() const { return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0; }

CommandResult run_command(const std::vector<std::string>& argv, const std::filesystem::path& log_file,
                          std::size_t keep_output, const std::filesystem::path& cwd) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw Error(ErrorKind::Io, std::string("pipe: ") + std::strerror(errno));
  UniqueFd out_read(out[0]), out_write(out[1]);
  SpawnSpec spec;
  spec.argv = argv;
  spec.stdout_fd = out_write.get();
  spec.stderr_fd = out_write.get();
  spec.cwd = cwd;
  pid_t pid = spawn_process(spec);
  out_write.reset();

  std::ofstream log;
  if (!log_file.empty()) {
    log.open(log_file, std::ios::app);
    log << "$";
    for (const auto& a : argv) log << ' ' << a;
    log << '\n';
  }
  CommandResult result;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(out_read.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (log) log.write(buf, n);
    result.output.append(buf, static_cast<std::size_t>(n));
    if (result.output.size() > 2 * keep_output) result.output.erase(0, result.output.size() - keep_output);
  }
  if (result.output.size() > keep_output) result.output.erase(0, result.output.size() - keep_output);
  result.wait_status = wait_process(pid);
  return result;
}

}  // namespace gondolin
