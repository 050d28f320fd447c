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

}  // namespace

SpawnedChild spawn_child(const SpawnRequest& req) {
  SpawnedChild out;
  Pipe status, in, outp, errp;
  int master = -1, slave = -1;
  auto cleanup = [&] {
    for (int* fd : {&status.read, &status.write, &in.read, &in.write, &outp.read, &outp.write, &errp.read, &errp.write,
                    &master, &slave})
      close_fd(*fd);
  };
  if (!status.open()) {
    out.error_number = errno;
    return out;
  }
  if (req.pty) {
    winsize ws{};
    ws.ws_row = req.rows;
    ws.ws_col = req.cols;
    if (::openpty(&master, &slave, nullptr, nullptr, &ws) != 0) {
      out.error_number = errno;
      cleanup();
      return out;
    }
    ::fcntl(master, F_SETFD, FD_CLOEXEC);
    ::fcntl(slave, F_SETFD, FD_CLOEXEC);
  } else {
    if ((req.stdin_pipe && !in.open()) || !outp.open() || !errp.open()) {
      out.error_number = errno;
      cleanup();
      return out;
    }
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
    cleanup();
    return out;
  }
  if (pid == 0) {
    reset_signals();
    ::setsid();
    if (req.pty) {
      ::ioctl(slave, TIOCSCTTY, 0);
      ::dup2(slave, 0);
      ::dup2(slave, 1);
      ::dup2(slave, 2);
    } else {
      int devnull = req.stdin_pipe ? in.read : ::open("/dev/null", O_RDONLY);
      ::dup2(devnull, 0);
      ::dup2(outp.write, 1);
      ::dup2(errp.write, 2);
    }
    // Every other descriptor of the agent is close-on-exec; the status pipe
    // stays open until exec succeeds, which closes it and tells the agent.
    if (req.as_user) {
      gid_t gid = req.gid;
      if (::setgroups(1, &gid) != 0 || ::setgid(req.gid) != 0 || ::setuid(req.uid) != 0)
        child_fail(status.write, proto::ErrorStage::User, errno);
    }
    if (::chdir(cwd) != 0) child_fail(status.write, proto::ErrorStage::Cwd, errno);
    environ = envp.data();
    ::execvp(argv[0], argv.data());
    child_fail(status.write, proto::ErrorStage::Exec, errno);
  }

  close_fd(status.write);
  close_fd(in.read);
  close_fd(outp.write);
  close_fd(errp.write);
  close_fd(slave);
  out.pid = pid;
  out.status_fd = status.read;
  if (req.pty) {
    out.stdout_fd = master;
    out.stdin_fd = ::fcntl(master, F_DUPFD_CLOEXEC, 0);
  } else {
    out.stdout_fd = outp.read;
    out.stderr_fd = errp.read;
    out.stdin_fd = in.write;
  }
  for (int fd : {out.stdin_fd, out.stdout_fd, out.stderr_fd, out.status_fd})
    if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return out;
}

}  // namespace gondolin::agent
