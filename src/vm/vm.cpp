// Vm: boots QEMU from an image, owns the io thread, turns API calls into
// control-protocol requests.
#include "gondolin/vm.h"

#include <sys/socket.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <future>
#include <openssl/rand.h>
#include <thread>

#include "control/control_client.h"
#include "egress/egress_service.h"
#include "gondolin/error.h"
#include "gondolin/image.h"
#include "util/logging.h"
#include "util/paths.h"
#include "util/subprocess.h"
#include "vm/accel.h"
#include "vm/guest_console.h"
#include "vm/qemu_command.h"
#include "vm/qemu_process.h"

namespace gondolin {

const char* to_string(Accel accel) {
  switch (accel) {
    case Accel::Auto: return "auto";
    case Accel::Kvm: return "kvm";
    case Accel::Tcg: return "tcg";
  }
  return "?";
}

namespace {

// A KVM guest boots in well under this; if it has not, KVM is broken here.
constexpr std::chrono::seconds kKvmFirstBootLimit{20};
constexpr std::chrono::seconds kShutdownGrace{3};
constexpr std::chrono::seconds kFileOpTimeout{60};

std::pair<UniqueFd, UniqueFd> socket_pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw Error(ErrorKind::Io, std::string("socketpair: ") + std::strerror(errno));
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

std::filesystem::path qemu_binary(const VmOptions& o) {
  std::string name = o.qemu_binary;
  if (name.empty())
    if (const char* env = std::getenv("GONDOLIN_QEMU"); env && *env) name = env;
  if (name.empty()) name = "qemu-system-x86_64";
  auto found = paths::find_program(name);
  if (found.empty())
    throw Error(ErrorKind::Qemu, "QEMU binary '" + name + "' not found (apt-get install qemu-system-x86, or set GONDOLIN_QEMU)");
  return found;
}

void validate_env_entry(const std::string& key, const std::string& value) {
  if (key.empty() || key.find('=') != std::string::npos || key.find('\0') != std::string::npos)
    throw Error(ErrorKind::Usage, "invalid environment variable name '" + key + "'");
  if (value.find('\0') != std::string::npos)
    throw Error(ErrorKind::Usage, "environment variable " + key + " contains a NUL byte");
}

enum class BootOutcome { Pending, Ready, Failed, TimedOut };

// The guest trusts the host's MITM CA (the certificate, never the key): its
// own copy, plus the system bundle that curl, git and python read.
constexpr const char* kGuestCaPath = "/etc/gondolin/mitm/ca.crt";
constexpr const char* kGuestCaBundle = "/etc/ssl/certs/ca-certificates.crt";

// A boot that ran out of time, as distinct from one that failed outright: only
// the former makes an auto-chosen KVM fall back to TCG.
class BootTimedOut : public Error {
 public:
  explicit BootTimedOut(const Error& e) : Error(e.kind(), e.what()) {}
};

}  // namespace

class VmImpl {
 public:
  explicit VmImpl(VmOptions opts) : opts_(std::move(opts)), work_(boost::asio::make_work_guard(io_)) {
    // Before the io thread exists, so a bad policy throws cleanly. The
    // guest's environment gets the secret placeholders, never the values.
    if (opts_.network.enabled) {
      egress_ = std::make_unique<egress::EgressService>(io_, opts_.network);
      for (auto& kv : egress_->guest_env()) opts_.env.push_back(std::move(kv));
    }
    thread_ = std::thread([this] { io_.run(); });
  }

  ~VmImpl() { close(); }

  void boot(const Image& image, Accel accel, const std::string& accel_reason, std::chrono::milliseconds timeout);
  Process spawn(const Command& cmd, const ExecOptions& o);
  proto::FileResult file_op(const proto::FileOp& op);
  void close();

  const VmInfo& info() const { return info_; }
  bool running() const { return running_.load(); }
  // The handlers the network stack hands guest TCP flows to (null without network).
  egress::EgressService* egress() { return egress_.get(); }

 private:
  template <typename F>
  auto on_io(F&& f) {
    using R = decltype(f());
    std::packaged_task<R()> task(std::forward<F>(f));
    auto fut = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return fut.get();
  }

  void finish_boot(BootOutcome outcome, std::optional<Error> error = std::nullopt);
  void start_qemu_io(const Image& image, Accel accel, std::chrono::milliseconds timeout);
  void on_qemu_exit(int status);
  void on_hello(const proto::Hello& hello);
  std::string console_hint() const;
  void teardown_io();

  VmOptions opts_;
  VmInfo info_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::unique_ptr<egress::EgressService> egress_;
  std::thread thread_;

  // io-thread state
  std::shared_ptr<vm::QemuProcess> qemu_;
  std::shared_ptr<control::ControlClient> control_;
  std::shared_ptr<vm::GuestConsole> console_;
  std::unique_ptr<boost::asio::steady_timer> boot_timer_;
  std::unique_ptr<boost::asio::steady_timer> shutdown_timer_;
  std::chrono::steady_clock::time_point boot_started_;
  std::promise<void> qemu_gone_;
  bool qemu_gone_set_ = false;

  std::mutex boot_mutex_;
  std::condition_variable boot_cv_;
  BootOutcome boot_outcome_ = BootOutcome::Pending;
  std::optional<Error> boot_error_;
  std::atomic<bool> running_{false};
  std::string death_reason_;
  bool closed_ = false;
  bool graceful_shutdown_ = false;  // set by subsystems whose data the guest may cache
};

void VmImpl::finish_boot(BootOutcome outcome, std::optional<Error> error) {
  std::lock_guard lock(boot_mutex_);
  if (boot_outcome_ != BootOutcome::Pending) return;
  boot_outcome_ = outcome;
  boot_error_ = std::move(error);
  boot_cv_.notify_all();
}

std::string VmImpl::console_hint() const {
  std::string tail = console_ ? console_->tail() : "";
  return tail.empty() ? "" : " (guest console: " + tail + ")";
}

void VmImpl::start_qemu_io(const Image& image, Accel accel, std::chrono::milliseconds timeout) {
  auto [control_host, control_qemu] = socket_pair();
  auto [console_host, console_qemu] = socket_pair();
  vm::QemuLaunch launch;
  launch.qemu_binary = qemu_binary(opts_);
  launch.accel = accel;
  launch.machine = opts_.machine;
  launch.memory_mib = opts_.memory_mib;
  launch.cpus = opts_.cpus;
  launch.kernel = image.kernel_path();
  launch.initrd = image.initramfs_path();
  launch.rootfs = image.rootfs_path();
  launch.cmdline = image.manifest.cmdline;
  launch.tsc_khz = vm::host_tsc_khz();
  launch.control_fd = control_qemu.get();
  launch.console_fd = console_qemu.get();
  vm::QemuCommand command = vm::build_qemu_command(launch);

  std::string line;
  for (const auto& a : command.argv) line += (line.empty() ? "" : " ") + a;
  log().debug("qemu command: {}", line);

  console_ = std::make_shared<vm::GuestConsole>(io_, std::move(console_host));
  console_->start();
  auto channel = std::make_shared<control::ControlChannel>(io_, std::move(control_host));
  control_ = std::make_shared<control::ControlClient>(io_, channel);
  // A dead control channel means a dead VM: QEMU is stopped, and its exit
  // handler reports why (QEMU's own words if it had any, else this reason).
  control_->start([this](const proto::Hello& h) { on_hello(h); },
                  [this](const std::string& why) {
                    death_reason_ = why;
                    running_ = false;
                    if (qemu_) qemu_->kill(SIGKILL);
                  });

  boot_started_ = std::chrono::steady_clock::now();
  qemu_ = vm::QemuProcess::start(io_, command.argv, command.fds, [this](int status) { on_qemu_exit(status); });
  info_.qemu_pid = qemu_->pid();

  boot_timer_ = std::make_unique<boost::asio::steady_timer>(io_, timeout);
  boot_timer_->async_wait([this, timeout](const boost::system::error_code& ec) {
    if (ec) return;
    finish_boot(BootOutcome::TimedOut,
                Error(ErrorKind::Guest, "the guest did not start within " +
                                            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) +
                                            " s" + console_hint()));
  });
}

void VmImpl::on_hello(const proto::Hello& hello) {
  info_.kernel_release = hello.kernel_release;
  info_.kernel_seconds = static_cast<double>(hello.uptime_at_start_ns) / 1e9;
  info_.agent_init_seconds = static_cast<double>(hello.init_duration_ns) / 1e9;
  info_.boot_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - boot_started_).count();
  proto::Config cfg;
  auto now = std::chrono::system_clock::now().time_since_epoch();
  cfg.realtime_ns = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count());
  cfg.entropy.resize(64);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(cfg.entropy.data()), 64) != 1) cfg.entropy.clear();
  cfg.hostname = opts_.hostname;
  control_->send_config(cfg);
  if (boot_timer_) boot_timer_->cancel();
  running_ = true;
  log().info("guest ready in {:.2f} s (kernel {:.2f} s, agent init {:.3f} s, {} with {})", info_.boot_seconds,
             info_.kernel_seconds, info_.agent_init_seconds, info_.kernel_release, to_string(info_.accel));
  log().debug("agent boot phases: {}", hello.boot_report);
  finish_boot(BootOutcome::Ready);
}

void VmImpl::on_qemu_exit(int status) {
  running_ = false;
  std::string qemu_text = qemu_->error_text();
  Error why(ErrorKind::Qemu, "QEMU failed: " + qemu_text);
  if (qemu_text.empty()) {
    why = death_reason_.empty()
              ? Error(ErrorKind::Qemu, "QEMU " + describe_wait_status(status) + console_hint())
              : Error(ErrorKind::Guest, death_reason_ + console_hint());
  }
  if (death_reason_.empty()) death_reason_ = why.what();
  if (control_) control_->fail_all(Error(ErrorKind::Guest, "the VM stopped: " + death_reason_));
  if (boot_timer_) boot_timer_->cancel();
  if (shutdown_timer_) shutdown_timer_->cancel();
  if (console_) console_->close();
  finish_boot(BootOutcome::Failed, why);
  if (!qemu_gone_set_) {
    qemu_gone_set_ = true;
    qemu_gone_.set_value();
  }
}

void VmImpl::boot(const Image& image, Accel accel, const std::string& accel_reason,
                  std::chrono::milliseconds timeout) {
  info_.image_id = image.manifest.id;
  info_.image_name = image.display_name();
  info_.accel = accel;
  info_.accel_reason = accel_reason;
  on_io([&] { start_qemu_io(image, accel, timeout); });
  std::unique_lock lock(boot_mutex_);
  boot_cv_.wait(lock, [&] { return boot_outcome_ != BootOutcome::Pending; });
  if (boot_outcome_ != BootOutcome::Ready) {
    Error err = *boot_error_;
    bool timed_out = boot_outcome_ == BootOutcome::TimedOut;
    lock.unlock();
    close();
    if (timed_out) throw BootTimedOut(err);
    throw err;
  }
}

Process VmImpl::spawn(const Command& cmd, const ExecOptions& o) {
  if (cmd.args().empty() || cmd.args().front().empty()) throw Error(ErrorKind::Usage, "no command given");
  proto::ExecStart req;
  req.argv = cmd.args();
  for (const auto& a : req.argv)
    if (a.find('\0') != std::string::npos) throw Error(ErrorKind::Usage, "command arguments cannot contain NUL bytes");
  using EnvList = std::vector<std::pair<std::string, std::string>>;
  for (const EnvList* env : {static_cast<const EnvList*>(&opts_.env), &o.env})
    for (const auto& [k, v] : *env) {
      validate_env_entry(k, v);
      req.env.push_back(k + "=" + v);
    }
  if (o.cwd.find('\0') != std::string::npos) throw Error(ErrorKind::Usage, "working directory contains a NUL byte");
  req.cwd = o.cwd;
  req.flags = (o.pty ? proto::kExecFlagPty : 0) | (o.stdin || !o.stdin_data.empty() ? proto::kExecFlagStdin : 0);
  req.rows = o.rows;
  req.cols = o.cols;
  proto::PayloadWriter size_check;
  req.encode(size_check);
  if (size_check.data().size() > proto::kMaxPayload || req.argv.size() > proto::kMaxArgs ||
      req.env.size() > proto::kMaxEnv)
    throw Error(ErrorKind::Usage, "command line and environment are too large (limit 1 MiB)");
  if (!running_) throw Error(ErrorKind::Guest, "the VM is not running" + (death_reason_.empty() ? "" : ": " + death_reason_));
  auto state = on_io([&] { return control_->start_exec(req, o.timeout); });
  return detail::make_process(std::move(state));
}

proto::FileResult VmImpl::file_op(const proto::FileOp& op) {
  if (op.path.empty() || op.path[0] != '/' || op.path.find('\0') != std::string::npos ||
      op.path.size() > proto::kMaxPathLength)
    throw Error(ErrorKind::Usage, "guest path must be absolute: '" + op.path + "'");
  if (!running_) throw Error(ErrorKind::Guest, "the VM is not running" + (death_reason_.empty() ? "" : ": " + death_reason_));
  auto future = on_io([&] { return control_->file_op(op); });
  // The agent answers file operations at once; silence means it is broken or hostile.
  if (future.wait_for(kFileOpTimeout) != std::future_status::ready)
    throw Error(ErrorKind::Guest, "the guest did not answer a file operation on " + op.path + " within " +
                                      std::to_string(kFileOpTimeout.count()) + " s");
  proto::FileResult r = future.get();
  if (r.error_number != 0)
    throw Error(ErrorKind::Io, "guest file " + op.path + ": " + std::strerror(r.error_number));
  return r;
}

void VmImpl::close() {
  if (closed_) return;
  closed_ = true;
  auto gone = qemu_gone_.get_future();
  bool have_qemu = on_io([&] {
    if (!qemu_ || qemu_->exited()) return false;
    // Everything the guest wrote lives in its tmpfs overlay and dies with it,
    // so killing QEMU loses nothing. Host-backed state that may sit dirty in
    // the guest (graceful_shutdown_) gets a sync and power-off first.
    if (running_ && graceful_shutdown_) control_->request_shutdown();
    else qemu_->kill(SIGKILL);
    shutdown_timer_ = std::make_unique<boost::asio::steady_timer>(io_, kShutdownGrace);
    shutdown_timer_->async_wait([this](const boost::system::error_code& ec) {
      if (!ec && qemu_) qemu_->kill(SIGKILL);
    });
    return true;
  });
  if (have_qemu) gone.wait();
  running_ = false;
  teardown_io();
}

void VmImpl::teardown_io() {
  on_io([&] {
    if (control_) control_->fail_all(Error(ErrorKind::Guest, "the VM was closed"));
    if (console_) console_->close();
    if (boot_timer_) boot_timer_->cancel();
    if (shutdown_timer_) shutdown_timer_->cancel();
  });
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
  control_.reset();
  console_.reset();
  qemu_.reset();  // kills and reaps QEMU if it somehow still runs
  boot_timer_.reset();
  shutdown_timer_.reset();
}

void Vm::install_mitm_ca(Vm& vm, const std::string& pem) {
  vm.mkdir("/etc/gondolin/mitm", true, 0755);
  vm.write_file(kGuestCaPath, pem, 0644);
  vm.mkdir("/etc/ssl/certs", true, 0755);
  vm.append_file(kGuestCaBundle, "\n" + pem);
}

Vm::Vm(std::unique_ptr<VmImpl> impl) : impl_(std::move(impl)) {}
Vm::Vm(Vm&&) noexcept = default;
Vm& Vm::operator=(Vm&&) noexcept = default;
Vm::~Vm() = default;

Vm Vm::create(VmOptions options) {
  init_logging_from_env();
  Image image = ImageStore::default_store().resolve(options.image);
  vm::AccelChoice choice = vm::choose_accel(options.accel);
  log().info("accelerator: {} ({})", to_string(choice.accel), choice.reason);
  log().info("image: {} ({})", image.display_name(), image.dir.string());

  // Auto-chosen KVM gets a bounded first boot; a hang means KVM is broken here.
  const bool probation = options.accel == Accel::Auto && choice.accel == Accel::Kvm;
  auto timeout = probation ? std::min<std::chrono::milliseconds>(options.boot_timeout, kKvmFirstBootLimit)
                           : options.boot_timeout;
  auto impl = std::make_unique<VmImpl>(options);
  try {
    impl->boot(image, choice.accel, choice.reason, timeout);
  } catch (const BootTimedOut& e) {
    if (!probation) throw Error(e.kind(), e.what());
    log().warn("the guest did not boot under KVM within {} s; falling back to TCG", kKvmFirstBootLimit.count());
    impl = std::make_unique<VmImpl>(options);
    try {
      impl->boot(image, Accel::Tcg, "KVM did not boot a guest in time; using TCG", options.boot_timeout);
    } catch (const BootTimedOut& e2) {
      throw Error(e2.kind(), e2.what());
    }
  }
  Vm vm(std::move(impl));
  if (auto* egress = vm.impl_->egress()) install_mitm_ca(vm, egress->ca_certificate_pem());
  return vm;
}

ExecResult Vm::exec(const Command& command, const ExecOptions& options) {
  ExecResult result;
  static_cast<ExitStatus&>(result) = exec_streaming(command, options, [&](OutputStream s, std::string_view d) {
    (s == OutputStream::Stdout ? result.stdout_data : result.stderr_data) += d;
  });
  return result;
}

Process Vm::spawn(const Command& command, const ExecOptions& options) { return impl_->spawn(command, options); }

ExitStatus Vm::exec_streaming(const Command& command, const ExecOptions& options,
                              const std::function<void(OutputStream, std::string_view)>& on_output) {
  Process p = spawn(command, options);
  // stdin_data is fed from a second thread: writing it all before reading
  // could deadlock once both directions' windows are full.
  std::thread feeder;
  if (!options.stdin_data.empty()) {
    feeder = std::thread([&p, &options] {
      try {
        p.write_stdin(options.stdin_data);
        p.close_stdin();
      } catch (const Error&) {
        // the process ended or the VM went away; wait() reports it
      }
    });
  }
  // If on_output throws, the command is killed so a blocked feeder wakes up.
  struct JoinOnExit {
    Process& p;
    std::thread& t;
    ~JoinOnExit() {
      if (!t.joinable()) return;
      if (std::uncaught_exceptions() > 0) p.send_signal(SIGKILL);
      t.join();
    }
  } join{p, feeder};
  while (auto chunk = p.read()) on_output(chunk->stream, chunk->data);
  return p.wait();
}

std::string Vm::read_file(const std::string& path) {
  std::string out;
  for (;;) {
    proto::FileOp op;
    op.op = proto::FileOpKind::Read;
    op.path = path;
    op.offset = out.size();
    op.length = proto::kMaxDataChunk;
    proto::FileResult r = impl_->file_op(op);
    out += r.data;
    if (r.eof || r.data.empty()) return out;
  }
}

namespace {
void write_chunks(VmImpl& impl, const std::string& path, std::string_view data, std::uint32_t mode, bool append) {
  std::size_t off = 0;
  do {
    proto::FileOp op;
    op.op = proto::FileOpKind::Write;
    op.path = path;
    op.mode = mode;
    op.offset = off;
    op.flags = append ? proto::kFileAppend : (off == 0 ? proto::kFileTruncate : 0);
    op.data = std::string(data.substr(off, proto::kMaxDataChunk));
    impl.file_op(op);
    off += op.data.size();
  } while (off < data.size());
}
}  // namespace

void Vm::write_file(const std::string& path, std::string_view data, std::uint32_t mode) {
  write_chunks(*impl_, path, data, mode, false);
}

void Vm::append_file(const std::string& path, std::string_view data) { write_chunks(*impl_, path, data, 0644, true); }

GuestFileInfo Vm::stat(const std::string& path) {
  proto::FileOp op;
  op.op = proto::FileOpKind::Stat;
  op.path = path;
  proto::FileResult r = impl_->file_op(op);
  return GuestFileInfo{path, r.stat.mode, r.stat.size, r.stat.mtime_ns, r.stat.uid, r.stat.gid};
}

std::vector<GuestFileInfo> Vm::list_dir(const std::string& path) {
  std::vector<GuestFileInfo> out;
  for (;;) {
    proto::FileOp op;
    op.op = proto::FileOpKind::List;
    op.path = path;
    op.offset = out.size();
    proto::FileResult r = impl_->file_op(op);
    auto entries = proto::decode_dir_entries(r.data);
    if (!entries) throw Error(ErrorKind::Guest, "the guest sent a malformed directory listing for " + path);
    for (auto& e : *entries) out.push_back(GuestFileInfo{std::move(e.name), e.mode, 0, 0, 0, 0});
    if (r.eof || entries->empty()) return out;
  }
}

void Vm::rename(const std::string& from, const std::string& to) {
  proto::FileOp op;
  op.op = proto::FileOpKind::Rename;
  op.path = from;
  op.path2 = to;
  if (to.empty() || to[0] != '/') throw Error(ErrorKind::Usage, "guest path must be absolute: '" + to + "'");
  impl_->file_op(op);
}

void Vm::remove(const std::string& path) {
  proto::FileOp op;
  op.op = proto::FileOpKind::Remove;
  op.path = path;
  impl_->file_op(op);
}

void Vm::mkdir(const std::string& path, bool parents, std::uint32_t mode) {
  proto::FileOp op;
  op.op = proto::FileOpKind::Mkdir;
  op.path = path;
  op.mode = mode;
  op.flags = parents ? proto::kFileParents : 0;
  impl_->file_op(op);
}

const VmInfo& Vm::info() const { return impl_->info(); }
bool Vm::running() const { return impl_ && impl_->running(); }

void Vm::close() {
  if (impl_) impl_->close();
}

}  // namespace gondolin
