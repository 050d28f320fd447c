#include "control/control_client.h"

#include <boost/asio/post.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "util/logging.h"

namespace gondolin::control {
namespace {

using proto::FrameType;

ExitStatus start_failure_status(const proto::ErrorMsg& e, const std::string& program) {
  ExitStatus s;
  if (e.stage == proto::ErrorStage::Exec) {
    s.exit_code = (e.error_number == ENOENT || e.error_number == ENOTDIR) ? 127 : 126;
    s.start_error = "cannot execute '" + program + "': " + std::strerror(e.error_number);
  } else if (e.stage == proto::ErrorStage::Cwd) {
    s.exit_code = 125;
    s.start_error = std::string("cannot change to the working directory: ") + std::strerror(e.error_number);
  } else if (e.stage == proto::ErrorStage::User) {
    s.exit_code = 125;
    s.start_error = std::string("cannot switch to the command's user: ") + std::strerror(e.error_number);
  } else {
    s.exit_code = 125;
    s.start_error = "the guest could not start the command: " + e.message;
  }
  return s;
}

}  // namespace

ControlClient::ControlClient(boost::asio::io_context& io, std::shared_ptr<ControlChannel> channel)
    : io_(io), channel_(std::move(channel)) {}

template <typename F>
void ControlClient::on_io(F&& f) {
  boost::asio::post(io_, [self = shared_from_this(), f = std::forward<F>(f)]() mutable { f(*self); });
}

void ControlClient::start(HelloHandler on_hello, DeadHandler on_dead) {
  on_hello_ = std::move(on_hello);
  on_dead_ = std::move(on_dead);
  std::weak_ptr<ControlClient> weak = shared_from_this();
  channel_->start(
      [weak](proto::FrameDecoder::Frame& f) {
        if (auto self = weak.lock()) self->on_frame(f);
      },
      [weak](const std::string& why) {
        if (auto self = weak.lock()) self->die(why);
      });
}

void ControlClient::send_frame(std::vector<std::uint8_t> frame) {
  if (frozen_)
    held_.push_back(std::move(frame));
  else
    channel_->send(std::move(frame));
}

void ControlClient::prepare_snapshot(std::function<void()> on_ready) {
  on_snapshot_ready_ = std::move(on_ready);
  channel_->send(proto::make_empty_frame(FrameType::SnapshotPrepare, 0));
  frozen_ = true;
}

void ControlClient::abort_snapshot() {
  if (!frozen_) return;
  frozen_ = false;
  on_snapshot_ready_ = nullptr;
  channel_->send(proto::make_empty_frame(FrameType::SnapshotAbort, 0));
  for (auto& f : held_) channel_->send(std::move(f));
  held_.clear();
}

void ControlClient::start_resumed(HelloHandler on_hello, DeadHandler on_dead) {
  start(std::move(on_hello), std::move(on_dead));
  channel_->send(proto::make_empty_frame(FrameType::Resume, 0));
}

void ControlClient::send_config(const proto::Config& config) {
  send_frame(proto::make_frame(FrameType::Config, 0, config));
}

void ControlClient::request_shutdown() { send_frame(proto::make_empty_frame(FrameType::Shutdown, 0)); }

std::shared_ptr<detail::ProcessState> ControlClient::start_exec(const proto::ExecStart& request,
                                                                std::optional<std::chrono::milliseconds> timeout) {
  auto state = std::make_shared<detail::ProcessState>();
  state->backend = std::static_pointer_cast<ExecBackend>(shared_from_this());
  if (dead_) {
    state->finished = true;
    state->failure = Error(ErrorKind::Guest, "the VM is not running");
    return state;
  }
  std::uint32_t id = next_id_++;
  state->id = id;
  state->stdin_open = (request.flags & (proto::kExecFlagStdin | proto::kExecFlagPty)) != 0;
  state->stdin_credit = proto::kInitialWindow;
  Exec ex;
  ex.state = state;
  ex.program = request.argv.front();
  if (timeout) {
    ex.timer = std::make_unique<boost::asio::steady_timer>(io_, *timeout);
    ex.timer->async_wait([weak = weak_from_this(), id](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      auto it = self->execs_.find(id);
      if (it == self->execs_.end()) return;
      it->second.timed_out = true;
      self->send_frame(proto::make_frame(FrameType::Signal, id, proto::SignalRequest{SIGKILL}));
      self->enforce_timeout(id);
    });
  }
  execs_.emplace(id, std::move(ex));
  send_frame(proto::make_frame(FrameType::ExecStart, id, request));
  return state;
}

std::future<proto::FileResult> ControlClient::file_op(const proto::FileOp& op) {
  std::promise<proto::FileResult> promise;
  auto future = promise.get_future();
  if (dead_) {
    promise.set_exception(std::make_exception_ptr(Error(ErrorKind::Guest, "the VM is not running")));
    return future;
  }
  std::uint32_t id = next_id_++;
  file_ops_.emplace(id, std::move(promise));
  send_frame(proto::make_frame(FrameType::FileOp, id, op));
  return future;
}

void ControlClient::mount(const proto::MountRequest& request, MountDone done) {
  if (dead_) return done({}, "the VM is not running");
  std::uint32_t id = next_id_++;
  mounts_.emplace(id, std::move(done));
  send_frame(proto::make_frame(FrameType::MountFs, id, request));
}

// Frames are dispatched by type through two tables: those about the channel
// (hello, snapshot, file and mount results) and those about one exec. An
// Error frame belongs to whoever owns its id: the channel (0), a mount, a
// file operation, or an exec.
void ControlClient::on_frame(Frame& frame) {
  if (dead_) return;
  const FrameType type = frame.header.type;
  proto::PayloadReader r(frame.payload.data(), frame.payload.size());
  if (type != FrameType::Hello && !hello_seen_) return violation("frame before hello");

  using ChannelHandler = void (ControlClient::*)(Frame&, proto::PayloadReader&);
  static constexpr std::pair<FrameType, ChannelHandler> kChannelFrames[] = {
      {FrameType::Hello, &ControlClient::on_hello_frame},
      {FrameType::SnapshotReady, &ControlClient::on_snapshot_ready},
      {FrameType::FileResult, &ControlClient::on_file_result},
      {FrameType::MountResult, &ControlClient::on_mount_result},
  };
  for (const auto& [t, handle] : kChannelFrames)
    if (t == type) return (this->*handle)(frame, r);
  const std::uint32_t id = frame.header.stream_id;
  if (type == FrameType::Error && (id == 0 || mounts_.count(id) || file_ops_.count(id))) return on_channel_error(id, r);

  auto it = execs_.find(id);
  if (it == execs_.end()) return violation("frame for unknown exec " + std::to_string(id));
  using ExecHandler = void (ControlClient::*)(std::uint32_t, Exec&, Frame&, proto::PayloadReader&);
  static constexpr std::pair<FrameType, ExecHandler> kExecFrames[] = {
      {FrameType::ExecStarted, &ControlClient::on_exec_started},
      {FrameType::Stdout, &ControlClient::on_output},
      {FrameType::Stderr, &ControlClient::on_output},
      {FrameType::Credit, &ControlClient::on_credit},
      {FrameType::Exit, &ControlClient::on_exit},
      {FrameType::Error, &ControlClient::on_exec_error},
  };
  for (const auto& [t, handle] : kExecFrames)
    if (t == type) return (this->*handle)(id, it->second, frame, r);
  violation("frame type " + std::to_string(static_cast<int>(type)) + " is not sent by guests");
}

void ControlClient::on_hello_frame(Frame& frame, proto::PayloadReader& r) {
  auto hello = proto::Hello::decode(r);
  if (!hello || frame.header.stream_id != 0 || hello_seen_) return violation("unexpected or malformed hello");
  hello_seen_ = true;
  if (hello->agent_version != proto::kProtocolVersion)
    return die("the image's agent speaks protocol " + std::to_string(hello->agent_version) + ", this gondolin speaks " +
               std::to_string(proto::kProtocolVersion) + "; rebuild the image with `gondolin build`");
  if (on_hello_) on_hello_(*hello);
}

void ControlClient::on_snapshot_ready(Frame& frame, proto::PayloadReader&) {
  if (!on_snapshot_ready_ || !frame.payload.empty() || frame.header.stream_id != 0)
    return violation("unexpected snapshot-ready");
  auto ready = std::move(on_snapshot_ready_);
  on_snapshot_ready_ = nullptr;
  ready();
}

void ControlClient::on_file_result(Frame& frame, proto::PayloadReader& r) {
  auto op = file_ops_.find(frame.header.stream_id);
  auto result = proto::FileResult::decode(r);
  if (op == file_ops_.end() || !result) return violation("unexpected or malformed file result");
  op->second.set_value(std::move(*result));
  file_ops_.erase(op);
}

void ControlClient::on_mount_result(Frame& frame, proto::PayloadReader& r) {
  auto m = mounts_.find(frame.header.stream_id);
  auto result = proto::MountResultMsg::decode(r);
  if (m == mounts_.end() || !result) return violation("unexpected or malformed mount result");
  auto done = std::move(m->second);
  mounts_.erase(m);
  done(*result, "");
}

void ControlClient::on_channel_error(std::uint32_t id, proto::PayloadReader& r) {
  auto e = proto::ErrorMsg::decode(r);
  const std::string message = e ? e->message : std::string("?");
  if (id == 0) {
    log().warn("guest agent reports: {}", e ? e->message : std::string("(malformed error)"));
  } else if (auto m = mounts_.find(id); m != mounts_.end()) {
    auto done = std::move(m->second);
    mounts_.erase(m);
    done({}, "the guest rejected the mount request: " + message);
  } else if (auto op = file_ops_.find(id); op != file_ops_.end()) {
    op->second.set_exception(
        std::make_exception_ptr(Error(ErrorKind::Guest, "the guest rejected a file operation: " + message)));
    file_ops_.erase(op);
  }
}

void ControlClient::on_exec_started(std::uint32_t, Exec& ex, Frame&, proto::PayloadReader& r) {
  if (!proto::ExecStarted::decode(r) || ex.started) return violation("bad exec-started");
  ex.started = true;
}

void ControlClient::on_credit(std::uint32_t, Exec& ex, Frame&, proto::PayloadReader& r) {
  auto c = proto::CreditGrant::decode(r);
  if (!c) return violation("malformed credit");
  bool overflow = false;
  {
    std::lock_guard lock(ex.state->mutex);
    overflow = ex.state->stdin_credit + c->bytes > proto::kInitialWindow;
    if (!overflow) {
      ex.state->stdin_credit += c->bytes;
      ex.state->changed.notify_all();
    }
  }
  // Outside the lock: ending the channel fails this very process state.
  if (overflow) violation("stdin credit overflow");
}

void ControlClient::on_exit(std::uint32_t id, Exec& ex, Frame&, proto::PayloadReader& r) {
  auto e = proto::ExitStatusMsg::decode(r);
  if (!e || !ex.started) return violation("bad exit");
  ExitStatus s;
  s.exit_code = e->exit_code;
  s.signal = e->signal;
  s.timed_out = ex.timed_out;
  finish(id, s);
}

void ControlClient::on_exec_error(std::uint32_t id, Exec& ex, Frame&, proto::PayloadReader& r) {
  auto e = proto::ErrorMsg::decode(r);
  if (!e) return violation("malformed error");
  if (ex.started) return violation("error after start");
  finish(id, start_failure_status(*e, ex.program));
}

void ControlClient::on_output(std::uint32_t, Exec& ex, Frame& frame, proto::PayloadReader&) {
  std::size_t n = frame.payload.size();
  if (!ex.started || n == 0 || n > proto::kMaxDataChunk) return violation("bad output frame");
  if (ex.output_in_flight + n > proto::kInitialWindow) return violation("output beyond the granted window");
  ex.output_in_flight += static_cast<std::uint32_t>(n);
  if (ex.abandoned) {
    // Nobody reads this any more; keep the guest flowing until it exits.
    ex.output_in_flight -= static_cast<std::uint32_t>(n);
    send_frame(proto::make_frame(FrameType::Credit, frame.header.stream_id,
                                 proto::CreditGrant{static_cast<std::uint32_t>(n)}));
    return;
  }
  OutputChunk chunk;
  chunk.stream = frame.header.type == FrameType::Stdout ? OutputStream::Stdout : OutputStream::Stderr;
  chunk.data.assign(reinterpret_cast<const char*>(frame.payload.data()), n);
  std::lock_guard lock(ex.state->mutex);
  ex.state->output.push_back(std::move(chunk));
  ex.state->changed.notify_all();
}

// The SIGKILL of a timeout went to the guest; a guest too busy (a fork bomb
// under TCG) or too hostile to end the command within kTimeoutKillGrace
// loses the VM: the command is reported timed out and QEMU is stopped.
void ControlClient::enforce_timeout(std::uint32_t id) {
  auto it = execs_.find(id);
  if (it == execs_.end() || !it->second.timer) return;
  it->second.timer->expires_after(kTimeoutKillGrace);
  it->second.timer->async_wait([weak = weak_from_this(), id](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || !self->execs_.count(id)) return;
    const std::string why = "the command did not end within " + std::to_string(kTimeoutKillGrace.count()) +
                            " s of its timeout's SIGKILL, so the VM was stopped";
    log().warn("{}", why);
    ExitStatus status;
    status.signal = SIGKILL;
    status.timed_out = true;
    self->finish(id, status);
    self->die(why);
  });
}

void ControlClient::finish(std::uint32_t id, const ExitStatus& status) {
  auto it = execs_.find(id);
  if (it == execs_.end()) return;
  if (it->second.timer) it->second.timer->cancel();
  auto state = it->second.state;
  execs_.erase(it);
  std::lock_guard lock(state->mutex);
  state->status = status;
  state->finished = true;
  state->changed.notify_all();
}

void ControlClient::fail_all(const Error& error) {
  auto ops = std::move(file_ops_);
  file_ops_.clear();
  for (auto& [id, promise] : ops) promise.set_exception(std::make_exception_ptr(error));
  auto mounts = std::move(mounts_);
  mounts_.clear();
  for (auto& [id, done] : mounts) done({}, error.what());
  auto execs = std::move(execs_);
  execs_.clear();
  for (auto& [id, ex] : execs) {
    if (ex.timer) ex.timer->cancel();
    std::lock_guard lock(ex.state->mutex);
    ex.state->failure = error;
    ex.state->finished = true;
    ex.state->changed.notify_all();
  }
}

void ControlClient::violation(const std::string& what) { die("the guest agent broke the control protocol: " + what); }

void ControlClient::die(const std::string& why) {
  if (dead_) return;
  dead_ = true;
  channel_->close();
  fail_all(Error(ErrorKind::Guest, why));
  if (on_dead_) on_dead_(why);
}

void ControlClient::return_output_credit(std::uint32_t id, std::uint32_t bytes) {
  on_io([id, bytes](ControlClient& self) {
    auto it = self.execs_.find(id);
    if (it == self.execs_.end() || bytes == 0) return;
    std::uint32_t n = std::min(bytes, it->second.output_in_flight);
    if (n == 0) return;
    it->second.output_in_flight -= n;
    self.send_frame(proto::make_frame(FrameType::Credit, id, proto::CreditGrant{n}));
  });
}

void ControlClient::send_stdin(std::uint32_t id, std::string data) {
  on_io([id, data = std::move(data)](ControlClient& self) {
    if (!self.execs_.count(id)) return;
    for (std::size_t off = 0; off < data.size(); off += proto::kMaxDataChunk) {
      std::size_t n = std::min<std::size_t>(proto::kMaxDataChunk, data.size() - off);
      self.send_frame(
          proto::make_frame(FrameType::Stdin, id, reinterpret_cast<const std::uint8_t*>(data.data() + off), n));
    }
  });
}

void ControlClient::close_stdin(std::uint32_t id) {
  on_io([id](ControlClient& self) {
    if (self.execs_.count(id)) self.send_frame(proto::make_empty_frame(FrameType::StdinEof, id));
  });
}

void ControlClient::resize(std::uint32_t id, std::uint16_t rows, std::uint16_t cols) {
  on_io([id, rows, cols](ControlClient& self) {
    if (self.execs_.count(id)) self.send_frame(proto::make_frame(FrameType::Resize, id, proto::Resize{rows, cols}));
  });
}

void ControlClient::send_signal(std::uint32_t id, int signo) {
  on_io([id, signo](ControlClient& self) {
    if (self.execs_.count(id)) self.send_frame(proto::make_frame(FrameType::Signal, id, proto::SignalRequest{signo}));
  });
}

void ControlClient::abandon(std::uint32_t id) {
  on_io([id](ControlClient& self) {
    auto it = self.execs_.find(id);
    if (it == self.execs_.end()) return;
    it->second.abandoned = true;
    self.send_frame(proto::make_frame(FrameType::Signal, id, proto::SignalRequest{SIGKILL}));
    if (it->second.output_in_flight > 0) {
      // Queued output will never be read: credit it all back at once.
      self.send_frame(proto::make_frame(FrameType::Credit, id, proto::CreditGrant{it->second.output_in_flight}));
      it->second.output_in_flight = 0;
    }
  });
}

}  // namespace gondolin::control
