#include "agent.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "child_process.h"
#include "file_ops.h"
#include "fuse_mount.h"
#include "klog.h"
#include "start_identity.h"

namespace gondolin::agent {
namespace {

using proto::FrameType;

// Stop reading children's output while this much is queued for the port.
constexpr std::size_t kOutgoingLimit = 1u << 20;
constexpr auto kPtyDrainGrace = std::chrono::milliseconds(100);

std::uint64_t tag(std::uint32_t id, std::uint8_t kind) { return (static_cast<std::uint64_t>(id) << 8) | kind; }

}  // namespace

Agent::Agent(int port_fd, AgentIdentity identity) : port_fd_(port_fd), identity_(identity) {
  ::fcntl(port_fd_, F_SETFL, ::fcntl(port_fd_, F_GETFL) | O_NONBLOCK);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  sigset_t mask;
  ::sigemptyset(&mask);
  ::sigaddset(&mask, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal_fd_ = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  ::signal(SIGPIPE, SIG_IGN);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag(0, static_cast<std::uint8_t>(Kind::Signal));
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, signal_fd_, &ev);
}

Agent::~Agent() {
  for (auto& [id, ex] : execs_)
    for (WatchedFd* w : {&ex->out, &ex->err, &ex->in, &ex->status}) close_watched(*w);
  if (signal_fd_ >= 0) ::close(signal_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void Agent::send_frame(std::vector<std::uint8_t> frame) {
  outgoing_bytes_ += frame.size();
  outgoing_.push_back(std::move(frame));
}

void Agent::send_error(std::uint32_t id, proto::ErrorStage stage, int err, const std::string& msg) {
  proto::ErrorMsg e{stage, err, msg.substr(0, 1000)};
  send_frame(proto::make_frame(FrameType::Error, id, e));
}

void Agent::mark_host_away() {
  port_hung_up_ = true;
  // Outside a VM the descriptor is a socket: its host never comes back.
  if (!identity_.is_init) host_gone_ = true;
}

void Agent::flush_port() {
  while (!outgoing_.empty() && !frozen_) {
    auto& front = outgoing_.front();
    ssize_t n = ::write(port_fd_, front.data() + outgoing_offset_, front.size() - outgoing_offset_);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) mark_host_away();
      return;
    }
    outgoing_offset_ += static_cast<std::size_t>(n);
    outgoing_bytes_ -= static_cast<std::size_t>(n);
    if (outgoing_offset_ == front.size()) {
      outgoing_.pop_front();
      outgoing_offset_ = 0;
    }
  }
}

void Agent::read_port() {
  std::uint8_t buf[64 * 1024];
  ssize_t n = ::read(port_fd_, buf, sizeof buf);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    // The host end is gone (or not yet back after a resume); a partial frame
    // from the old connection must not be glued to the next one.
    mark_host_away();
    decoder_ = proto::FrameDecoder{};
    return;
  }
  if (n < 0) return;
  std::size_t off = 0;
  auto len = static_cast<std::size_t>(n);
  while (off < len) {
    off += decoder_.feed(buf + off, len - off);
    if (decoder_.error() != proto::HeaderError::None) {
      klog("bad frame from host: %s", proto::describe(decoder_.error()));
      send_error(0, proto::ErrorStage::Protocol, EPROTO, proto::describe(decoder_.error()));
      decoder_ = proto::FrameDecoder{};
      return;
    }
    if (decoder_.has_frame()) {
      auto frame = decoder_.take();
      handle_frame(frame);
    }
  }
}

// Host frames by type; a type not here is refused with an Error frame.
void Agent::handle_frame(Frame& frame) {
  using Handler = void (Agent::*)(std::uint32_t, Frame&, proto::PayloadReader&);
  static constexpr std::pair<FrameType, Handler> kHandlers[] = {
      {FrameType::Config, &Agent::on_config_frame},
      {FrameType::ExecStart, &Agent::on_exec_start_frame},
      {FrameType::Stdin, &Agent::on_stdin_frame},
      {FrameType::StdinEof, &Agent::on_stdin_eof_frame},
      {FrameType::Credit, &Agent::on_credit_frame},
      {FrameType::Resize, &Agent::on_resize_frame},
      {FrameType::Signal, &Agent::on_signal_frame},
      {FrameType::Shutdown, &Agent::on_shutdown_frame},
      {FrameType::SnapshotPrepare, &Agent::on_snapshot_prepare_frame},
      {FrameType::SnapshotAbort, &Agent::on_snapshot_abort_frame},
      {FrameType::Resume, &Agent::on_resume_frame},
      {FrameType::FileOp, &Agent::on_file_op_frame},
      {FrameType::MountFs, &Agent::on_mount_frame},
  };
  proto::PayloadReader r(frame.payload.data(), frame.payload.size());
  const std::uint32_t id = frame.header.stream_id;
  for (const auto& [type, handle] : kHandlers)
    if (type == frame.header.type) return (this->*handle)(id, frame, r);
  send_error(id, proto::ErrorStage::Protocol, EPROTO, "unexpected frame type from host");
}

void Agent::on_config_frame(std::uint32_t, Frame&, proto::PayloadReader& r) {
  if (auto cfg = proto::Config::decode(r)) apply_config(*cfg);
}

void Agent::on_exec_start_frame(std::uint32_t id, Frame&, proto::PayloadReader& r) {
  auto req = proto::ExecStart::decode(r);
  if (!req) return send_error(id, proto::ErrorStage::Protocol, EINVAL, "malformed exec request");
  start_exec(id, *req);
}

void Agent::on_stdin_frame(std::uint32_t id, Frame& frame, proto::PayloadReader&) {
  GuestExec* ex = find(id);
  if (!ex) return;
  if (!ex->in.open() || ex->stdin_eof_requested) {
    // The child stopped reading: return the credit so the host never stalls.
    if (!frame.payload.empty() && frame.payload.size() <= proto::kInitialWindow)
      send_frame(proto::make_frame(FrameType::Credit, id,
                                   proto::CreditGrant{static_cast<std::uint32_t>(frame.payload.size())}));
    return;
  }
  if (ex->stdin_pending.size() + frame.payload.size() > proto::kInitialWindow)
    return send_error(id, proto::ErrorStage::Protocol, EOVERFLOW, "stdin window exceeded");
  ex->stdin_pending.append(reinterpret_cast<const char*>(frame.payload.data()), frame.payload.size());
  write_stdin(*ex);
}

void Agent::on_stdin_eof_frame(std::uint32_t id, Frame&, proto::PayloadReader&) {
  if (GuestExec* ex = find(id)) {
    ex->stdin_eof_requested = true;
    write_stdin(*ex);
  }
}

void Agent::on_credit_frame(std::uint32_t id, Frame&, proto::PayloadReader& r) {
  auto c = proto::CreditGrant::decode(r);
  GuestExec* ex = find(id);
  if (!c || !ex) return;
  ex->output_credit = std::min<std::uint32_t>(proto::kInitialWindow, ex->output_credit + c->bytes);
  if (ex->exited) {
    if (ex->out.open()) on_output(*ex, ex->out, FrameType::Stdout);
    if ((ex = find(id)) && ex->err.open()) on_output(*ex, ex->err, FrameType::Stderr);
  }
}

void Agent::on_resize_frame(std::uint32_t id, Frame&, proto::PayloadReader& r) {
  auto z = proto::Resize::decode(r);
  GuestExec* ex = find(id);
  if (!z || !ex || !ex->pty || !ex->out.open()) return;
  winsize ws{};
  ws.ws_row = z->rows;
  ws.ws_col = z->cols;
  ::ioctl(ex->out.fd, TIOCSWINSZ, &ws);
}

void Agent::on_signal_frame(std::uint32_t id, Frame&, proto::PayloadReader& r) {
  auto s = proto::SignalRequest::decode(r);
  GuestExec* ex = find(id);
  if (!s || !ex || ex->exited || ex->pid <= 0) return;
  if (::kill(-ex->pid, s->signo) != 0) ::kill(ex->pid, s->signo);
}

void Agent::on_shutdown_frame(std::uint32_t, Frame&, proto::PayloadReader&) { shutdown_requested_ = true; }
void Agent::on_snapshot_prepare_frame(std::uint32_t, Frame&, proto::PayloadReader&) { prepare_snapshot(); }
void Agent::on_snapshot_abort_frame(std::uint32_t, Frame&, proto::PayloadReader&) { frozen_ = false; }
void Agent::on_resume_frame(std::uint32_t, Frame&, proto::PayloadReader&) { resume_after_snapshot(); }

void Agent::on_file_op_frame(std::uint32_t id, Frame&, proto::PayloadReader& r) {
  auto op = proto::FileOp::decode(r);
  if (!op) return send_error(id, proto::ErrorStage::Protocol, EINVAL, "malformed file operation");
  send_frame(proto::make_frame(FrameType::FileResult, id, perform_host_file_op(*op)));
}

void Agent::on_mount_frame(std::uint32_t id, Frame&, proto::PayloadReader& r) {
  auto m = proto::MountRequest::decode(r);
  if (!m) return send_error(id, proto::ErrorStage::Protocol, EINVAL, "malformed mount request");
  // Outside a VM (--serve-fd) the agent must never mount on its host.
  proto::MountResultMsg result =
      identity_.is_init ? mount_fuse(*m) : proto::MountResultMsg{EPERM, "not running as the guest's init"};
  send_frame(proto::make_frame(FrameType::MountResult, id, result));
}

void Agent::apply_config(const proto::Config& cfg) {
  if (identity_.is_init) apply_start_identity(cfg);
}

void Agent::send_hello() {
  utsname uts{};
  ::uname(&uts);
  proto::Hello hello{proto::kProtocolVersion, identity_.uptime_at_start_ns, identity_.init_duration_ns, uts.release,
                     identity_.boot_report,   identity_.init_extra_error};
  send_frame(proto::make_frame(FrameType::Hello, 0, hello));
}

void Agent::prepare_snapshot() {
  // Everything queued goes out whole, then Ready, then silence.
  send_frame(proto::make_empty_frame(FrameType::SnapshotReady, 0));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!outgoing_.empty() && !port_hung_up_ && std::chrono::steady_clock::now() < deadline) {
    flush_port();
    if (outgoing_.empty()) break;
    pollfd p{port_fd_, POLLOUT, 0};
    ::poll(&p, 1, 100);
  }
  frozen_ = true;
}

void Agent::resume_after_snapshot() {
  // A new host: the old exec streams have no reader any more. Their processes
  // keep running (and are reaped as orphans); only our ends of their stdio close.
  for (auto& [id, ex] : execs_)
    for (WatchedFd* w : {&ex->out, &ex->err, &ex->in, &ex->status}) close_watched(*w);
  execs_.clear();
  exec_by_pid_.clear();
  outgoing_.clear();
  outgoing_offset_ = 0;
  outgoing_bytes_ = 0;
  frozen_ = false;
  send_hello();
}

void Agent::start_exec(std::uint32_t id, const proto::ExecStart& req) {
  if (id == 0 || find(id)) return send_error(id, proto::ErrorStage::Protocol, EEXIST, "exec id in use");
  SpawnRequest sr;
  sr.argv = req.argv;
  sr.pty = (req.flags & proto::kExecFlagPty) != 0;
  sr.stdin_pipe = (req.flags & proto::kExecFlagStdin) != 0;
  sr.env = build_environment(req.env, sr.pty);
  sr.cwd = req.cwd;
  sr.as_user = (req.flags & proto::kExecFlagUser) != 0;
  sr.uid = req.uid;
  sr.gid = req.gid;
  sr.rows = req.rows ? req.rows : 24;
  sr.cols = req.cols ? req.cols : 80;
  SpawnedChild child = spawn_child(sr);
  if (child.pid < 0)
    return send_error(id, proto::ErrorStage::Spawn, child.error_number, std::strerror(child.error_number));

  auto ex = std::make_unique<GuestExec>();
  ex->id = id;
  ex->pid = child.pid;
  ex->pty = sr.pty;
  ex->out.fd = child.stdout_fd;
  ex->err.fd = child.stderr_fd;
  ex->in.fd = child.stdin_fd;
  ex->status.fd = child.status_fd;
  exec_by_pid_[child.pid] = id;
  GuestExec& ref = *ex;
  execs_[id] = std::move(ex);
  refresh_interest(ref);
}

void Agent::on_status(GuestExec& ex) {
  // Reaping may already have read the status earlier in this epoll batch.
  if (!ex.status.open()) return;
  SpawnFailure failure{};
  ssize_t n = ::read(ex.status.fd, &failure, sizeof failure);
  if (n < 0 && errno == EAGAIN) return;
  close_watched(ex.status);
  if (n == static_cast<ssize_t>(sizeof failure)) {
    auto stage = static_cast<proto::ErrorStage>(failure.stage);
    std::string what = stage == proto::ErrorStage::Cwd    ? "cannot change directory"
                       : stage == proto::ErrorStage::User ? "cannot switch user"
                                                          : "cannot execute";
    send_error(ex.id, stage, failure.error_number, what + ": " + std::strerror(failure.error_number));
    ex.failed = true;
    for (WatchedFd* w : {&ex.out, &ex.err, &ex.in}) close_watched(*w);
  } else {
    ex.started = true;
    send_frame(proto::make_frame(FrameType::ExecStarted, ex.id, proto::ExecStarted{ex.pid}));
  }
  finish_if_done(ex);
}

void Agent::on_output(GuestExec& ex, WatchedFd& w, proto::FrameType type) {
  std::uint32_t want = std::min(ex.output_credit, proto::kMaxDataChunk);
  if (want == 0 || !w.open()) return;
  std::uint8_t buf[proto::kMaxDataChunk];
  ssize_t n = ::read(w.fd, buf, want);
  if (n > 0) {
    ex.output_credit -= static_cast<std::uint32_t>(n);
    if (ex.pty) ex.pty_drain_deadline.reset();  // still flowing: restart the grace period
    send_frame(proto::make_frame(type, ex.id, buf, static_cast<std::size_t>(n)));
    return;
  }
  if (n < 0 && errno == EINTR) return;
  if (n < 0 && errno == EAGAIN) {
    if (!ex.exited) return;
    // The child is gone and its pipe is empty: anything still holding the pipe
    // is a background process we do not wait for. A pty gets a short grace.
    if (ex.pty) {
      auto now = std::chrono::steady_clock::now();
      if (!ex.pty_drain_deadline) ex.pty_drain_deadline = now + kPtyDrainGrace;
      if (now < *ex.pty_drain_deadline) return;
    }
  }
  close_watched(w);  // EOF, EIO (pty with no slave left) or a real error
  finish_if_done(ex);
}

void Agent::write_stdin(GuestExec& ex) {
  std::size_t written = 0;
  while (!ex.stdin_pending.empty() && ex.in.open()) {
    ssize_t n = ::write(ex.in.fd, ex.stdin_pending.data(), ex.stdin_pending.size());
    if (n > 0) {
      ex.stdin_pending.erase(0, static_cast<std::size_t>(n));
      written += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    // The child closed its stdin: drop what it will never read.
    written += ex.stdin_pending.size();
    ex.stdin_pending.clear();
    if (!ex.pty) close_watched(ex.in);
  }
  if (written > 0)
    send_frame(proto::make_frame(FrameType::Credit, ex.id, proto::CreditGrant{static_cast<std::uint32_t>(written)}));
  if (ex.stdin_pending.empty() && ex.stdin_eof_requested && ex.in.open()) {
    if (ex.pty) {
      // A terminal has no half-close; EOF is the line discipline's ^D.
      const char eof = 0x04;
      ssize_t ignored = ::write(ex.in.fd, &eof, 1);
      (void)ignored;
      ex.stdin_eof_requested = false;
    } else {
      close_watched(ex.in);
    }
  }
}

void Agent::reap_children() {
  signalfd_siginfo si;
  while (::read(signal_fd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {}
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    auto it = exec_by_pid_.find(pid);
    if (it == exec_by_pid_.end()) continue;  // an orphan we adopted as PID 1
    std::uint32_t id = it->second;
    exec_by_pid_.erase(it);
    GuestExec* ex = find(id);
    if (!ex) continue;
    ex->exited = true;
    ex->wait_status = status;
    if (ex->status.open()) on_status(*ex);
    if (!(ex = find(id))) continue;
    if (ex->out.open()) on_output(*ex, ex->out, FrameType::Stdout);
    if (!(ex = find(id))) continue;
    if (ex->err.open()) on_output(*ex, ex->err, FrameType::Stderr);
    if ((ex = find(id))) finish_if_done(*ex);
  }
}

void Agent::finish_if_done(GuestExec& ex) {
  if (!ex.exited) return;
  if (ex.failed) return erase(ex.id);
  if (!ex.started || ex.out.open() || ex.err.open()) return;
  proto::ExitStatusMsg msg;
  if (WIFSIGNALED(ex.wait_status))
    msg.signal = WTERMSIG(ex.wait_status);
  else
    msg.exit_code = WEXITSTATUS(ex.wait_status);
  send_frame(proto::make_frame(FrameType::Exit, ex.id, msg));
  erase(ex.id);
}

void Agent::close_watched(WatchedFd& w) {
  if (!w.open()) return;
  if (w.mask) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, w.fd, nullptr);
  ::close(w.fd);
  w.fd = -1;
  w.mask = 0;
}

void Agent::set_interest(WatchedFd& w, Kind kind, std::uint32_t id, std::uint32_t mask) {
  if (!w.open() || w.mask == mask) return;
  epoll_event ev{};
  ev.events = mask;
  ev.data.u64 = tag(id, static_cast<std::uint8_t>(kind));
  int op = w.mask == 0 ? EPOLL_CTL_ADD : (mask == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD);
  if (::epoll_ctl(epoll_fd_, op, w.fd, &ev) == 0) w.mask = mask;
}

void Agent::refresh_interest(GuestExec& ex) {
  bool can_send = ex.started && !frozen_ && ex.output_credit > 0 && outgoing_bytes_ < kOutgoingLimit;
  std::uint32_t out_mask = can_send ? std::uint32_t{EPOLLIN} : 0u;
  set_interest(ex.out, Kind::Stdout, ex.id, out_mask);
  set_interest(ex.err, Kind::Stderr, ex.id, out_mask);
  set_interest(ex.in, Kind::Stdin, ex.id, ex.started && !ex.stdin_pending.empty() ? std::uint32_t{EPOLLOUT} : 0u);
  set_interest(ex.status, Kind::Status, ex.id, EPOLLIN);
}

GuestExec* Agent::find(std::uint32_t id) {
  auto it = execs_.find(id);
  return it == execs_.end() ? nullptr : it->second.get();
}

void Agent::erase(std::uint32_t id) {
  auto it = execs_.find(id);
  if (it == execs_.end()) return;
  for (WatchedFd* w : {&it->second->out, &it->second->err, &it->second->in, &it->second->status}) close_watched(*w);
  if (!it->second->exited) exec_by_pid_.erase(it->second->pid);
  execs_.erase(it);
}

void Agent::run() {
  send_hello();

  std::vector<epoll_event> events(64);
  for (;;) {
    flush_port();
    if (host_gone_) return;
    if (shutdown_requested_ && outgoing_.empty()) {
      if (!identity_.is_init) return;
      ::sync();
      ::reboot(RB_POWER_OFF);
    }
    for (auto& [id, ex] : execs_) refresh_interest(*ex);

    std::uint32_t port_mask =
        port_hung_up_ ? 0 : (std::uint32_t{EPOLLIN} | (outgoing_.empty() || frozen_ ? 0u : std::uint32_t{EPOLLOUT}));
    if (port_mask != port_mask_) {
      epoll_event ev{};
      ev.events = port_mask;
      ev.data.u64 = tag(0, static_cast<std::uint8_t>(Kind::Port));
      int op = port_mask_ == 0 ? EPOLL_CTL_ADD : (port_mask == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD);
      ::epoll_ctl(epoll_fd_, op, port_fd_, &ev);
      port_mask_ = port_mask;
    }

    int timeout_ms = -1;
    for (auto& [id, ex] : execs_)
      if (ex->pty_drain_deadline) timeout_ms = 20;
    // While the host is away the port reports HUP continuously, so we poll it
    // gently instead of waiting on it.
    if (port_hung_up_) timeout_ms = timeout_ms < 0 ? 100 : std::min(timeout_ms, 100);

    int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) {
      klog("epoll_wait: %s", std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      std::uint64_t t = events[static_cast<std::size_t>(i)].data.u64;
      std::uint32_t evmask = events[static_cast<std::size_t>(i)].events;
      auto kind = static_cast<Kind>(t & 0xff);
      auto id = static_cast<std::uint32_t>(t >> 8);
      if (kind == Kind::Port) {
        if (evmask & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_port();
        continue;
      }
      if (kind == Kind::Signal) {
        reap_children();
        continue;
      }
      GuestExec* ex = find(id);
      if (!ex) continue;  // closed by an earlier event in this batch
      switch (kind) {
        case Kind::Stdout: on_output(*ex, ex->out, FrameType::Stdout); break;
        case Kind::Stderr: on_output(*ex, ex->err, FrameType::Stderr); break;
        case Kind::Stdin: write_stdin(*ex); break;
        case Kind::Status: on_status(*ex); break;
        default: break;
      }
    }

    auto now = std::chrono::steady_clock::now();
    std::vector<std::uint32_t> expired;
    for (auto& [id, ex] : execs_)
      if (ex->pty_drain_deadline && now >= *ex->pty_drain_deadline) expired.push_back(id);
    for (std::uint32_t id : expired)
      if (GuestExec* ex = find(id)) on_output(*ex, ex->out, FrameType::Stdout);

    if (port_hung_up_) {
      // Probe whether the host came back (e.g. after a resume).
      pollfd p{port_fd_, POLLIN, 0};
      if (::poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP)) port_hung_up_ = false;
    }
  }
}

}  // namespace gondolin::agent
