#include "vm/qemu_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>

#include <cerrno>
#include <cstring>

#include "gondolin/error.h"
#include "util/logging.h"
#include "util/subprocess.h"
#include "util/unique_fd.h"

namespace gondolin::vm {
namespace {
constexpr std::size_t kStderrKeep = 16 * 1024;
}

QemuProcess::QemuProcess(boost::asio::io_context& io) : io_(io), pidfd_(io), stderr_(io) {}

std::shared_ptr<QemuProcess> QemuProcess::start(boost::asio::io_context& io, const std::vector<std::string>& argv,
                                                const std::vector<std::pair<int, int>>& fds, ExitHandler on_exit) {
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw Error(ErrorKind::Io, std::string("pipe: ") + std::strerror(errno));
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);

  std::shared_ptr<QemuProcess> p(new QemuProcess(io));
  SpawnSpec spec;
  spec.argv = argv;
  spec.fds = fds;
  spec.stdout_fd = err_write.get();
  spec.stderr_fd = err_write.get();
  spec.die_with_parent = true;
  try {
    p->pid_ = spawn_process(spec);
  } catch (const Error& e) {
    throw Error(ErrorKind::Qemu, std::string(e.what()) + " (install qemu-system-x86, or set GONDOLIN_QEMU)");
  }
  err_write.reset();
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, p->pid_, 0));
  if (pidfd < 0) {
    ::kill(p->pid_, SIGKILL);
    wait_process(p->pid_);
    throw Error(ErrorKind::Io, std::string("pidfd_open: ") + std::strerror(errno));
  }
  p->pidfd_.assign(pidfd);
  ::fcntl(err_read.get(), F_SETFL, O_NONBLOCK);
  p->stderr_.assign(err_read.release());
  p->on_exit_ = std::move(on_exit);
  p->watch_exit();
  p->read_stderr();
  log().debug("started QEMU (pid {})", p->pid_);
  return p;
}

QemuProcess::~QemuProcess() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    wait_process(pid_);
  }
}

void QemuProcess::kill(int signo) {
  if (pid_ > 0 && !exited_) ::kill(pid_, signo);
}

std::string QemuProcess::error_text() const {
  std::string t = stderr_text_;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  // QEMU prefixes errors with its argv[0]; keep the last few lines.
  std::size_t lines = 0, pos = t.size();
  while (pos > 0 && lines < 4) {
    pos = t.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
    ++lines;
  }
  std::string tail = t.substr(pos == 0 ? 0 : pos + 1);
  for (char& c : tail)
    if (c == '\n') c = ' ';
  return tail;
}

void QemuProcess::watch_exit() {
  pidfd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                    [self = shared_from_this()](const boost::system::error_code& ec) {
                      if (ec) return;
                      int status = 0;
                      pid_t r = ::waitpid(self->pid_, &status, WNOHANG);
                      if (r == 0) return self->watch_exit();
                      self->exited_ = true;
                      self->drain_stderr_now();
                      log().debug("QEMU (pid {}) {}", self->pid_, describe_wait_status(status));
                      if (self->on_exit_) self->on_exit_(status);
                    });
}

void QemuProcess::drain_stderr_now() {
  if (!stderr_.is_open()) return;
  for (;;) {
    ssize_t n = ::read(stderr_.native_handle(), buf_.data(), buf_.size());
    if (n <= 0) break;
    stderr_text_.append(buf_.data(), static_cast<std::size_t>(n));
  }
  if (stderr_text_.size() > kStderrKeep) stderr_text_.erase(0, stderr_text_.size() - kStderrKeep);
}

void QemuProcess::read_stderr() {
  stderr_.async_read_some(boost::asio::buffer(buf_),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                            if (ec) return;
                            self->stderr_text_.append(self->buf_.data(), n);
                            if (self->stderr_text_.size() > 2 * kStderrKeep)
                              self->stderr_text_.erase(0, self->stderr_text_.size() - kStderrKeep);
                            log().debug("qemu: {}", std::string(self->buf_.data(), n));
                            self->read_stderr();
                          });
}

}  // namespace gondolin::vm
