#include "child_process.h"

#include <fcntl.h>
#include <grp.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <utility>
#include <vector>

#include "proto/control_protocol.h"

extern char** environ;

namespace gondolin::agent {
namespace {

struct Pipe {
  int read = -1;
  int write = -1;
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read = fds[0];
    write = fds[1];
    return true;
  }
};

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

[[noreturn]] void child_fail(int status_fd, proto::ErrorStage stage, int err) {
  SpawnFailure f{static_cast<int>(stage), err};
  ssize_t ignored = ::write(status_fd, &f, sizeof f);
  (void)ignored;
  ::_exit(stage == proto::ErrorStage::Exec ? (err == ENOENT ? 127 : 126) : 125);
}

void reset_signals() {
  sigset_t all;
  ::sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  for (int s = 1; s < NSIG; ++s) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    ::signal(s, SIG_DFL);
  }
}

// Every descriptor a spawn needs, opened before fork; whatever is left open
// on failure is closed by the destructor.
struct ChildFds {
  Pipe status, in, out, err;
  int master = -1, slave = -1;

  ~ChildFds() {
    for (int* fd : {&status.read, &status.write, &in.read, &in.write, &out.read, &out.write, &err.read, &err.write,
                    &master, &slave})
      close_fd(*fd);
  }
  // 0, or the errno of what failed.
  int open(const SpawnRequest& req) {
    if (!status.open()) return errno;
    if (!req.pty) return (req.stdin_pipe && !in.open()) || !out.open() || !err.open() ? errno : 0;
    winsize ws{};
    ws.ws_row = req.rows;
    ws.ws_col = req.cols;
    if (::openpty(&master, &slave, nullptr, nullptr, &ws) != 0) return errno;
    ::fcntl(master, F_SETFD, FD_CLOEXEC);
    ::fcntl(slave, F_SETFD, FD_CLOEXEC);
    return 0;
  }
};

// In the forked child: stdio, session, user, directory, then exec.
[[noreturn]] void become_command(const SpawnRequest& req, ChildFds& fds, char** argv, char** envp, const char* cwd) {
  reset_signals();
  ::setsid();
  if (req.pty) {
    ::ioctl(fds.slave, TIOCSCTTY, 0);
    ::dup2(fds.slave, 0);
    ::dup2(fds.slave, 1);
    ::dup2(fds.slave, 2);
  } else {
    int devnull = req.stdin_pipe ? fds.in.read : ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(fds.out.write, 1);
    ::dup2(fds.err.write, 2);
  }
  // Every other descriptor of the agent is close-on-exec; the status pipe
  // stays open until exec succeeds, which closes it and tells the agent.
  if (req.as_user) {
    gid_t gid = req.gid;
    if (::setgroups(1, &gid) != 0 || ::setgid(req.gid) != 0 || ::setuid(req.uid) != 0)
      child_fail(fds.status.write, proto::ErrorStage::User, errno);
  }
  if (::chdir(cwd) != 0) child_fail(fds.status.write, proto::ErrorStage::Cwd, errno);
  environ = envp;
  ::execvp(argv[0], argv);
  child_fail(fds.status.write, proto::ErrorStage::Exec, errno);
}

// In the agent after fork: keep the parent's ends (non-blocking), close the rest.
SpawnedChild parent_side(pid_t pid, const SpawnRequest& req, ChildFds& fds) {
  SpawnedChild out;
  out.pid = pid;
  out.status_fd = std::exchange(fds.status.read, -1);
  if (req.pty) {
    out.stdout_fd = std::exchange(fds.master, -1);
    out.stdin_fd = ::fcntl(out.stdout_fd, F_DUPFD_CLOEXEC, 0);
  } else {
    out.stdout_fd = std::exchange(fds.out.read, -1);
    out.stderr_fd = std::exchange(fds.err.read, -1);
    out.stdin_fd = std::exchange(fds.in.write, -1);
  }
  for (int fd : {out.stdin_fd, out.stdout_fd, out.stderr_fd, out.status_fd})
    if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return out;  // ~ChildFds closes the child's ends
}

}  // namespace

SpawnedChild spawn_child(const SpawnRequest& req) {
  SpawnedChild out;
  ChildFds fds;
  if (int err = fds.open(req); err != 0) {
    out.error_number = err;
    return out;
  }
  // Everything the child touches is prepared before fork.
  std::vector<char*> argv, envp;
  for (const auto& a : req.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : req.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const char* cwd = req.cwd.empty() ? "/" : req.cwd.c_str();

  pid_t pid = ::fork();
  if (pid < 0) {
    out.error_number = errno;
    return out;
  }
  if (pid == 0) become_command(req, fds, argv.data(), envp.data(), cwd);
  return parent_side(pid, req, fds);
}

}  // namespace gondolin::agent
