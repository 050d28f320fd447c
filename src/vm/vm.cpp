// Vm: the public facade over VmImpl.
#include "gondolin/vm.h"

#include <unistd.h>

#include <csignal>
#include <thread>

#include "gondolin/error.h"
#include "gondolin/guest_ssh.h"
#include "gondolin/image.h"
#include "proto/control_protocol.h"
#include "util/files.h"
#include "util/logging.h"
#include "vm/accel.h"
#include "vm/boot_template.h"
#include "vm/vm_impl.h"
#include "vm/vm_internals.h"

namespace gondolin {

namespace {
constexpr const char* kRootfsModeNames[] = {"cow", "memory", "readonly"};  // in enum order
}  // namespace

const char* to_string(RootfsMode mode) {
  auto i = static_cast<std::size_t>(mode);
  return i < std::size(kRootfsModeNames) ? kRootfsModeNames[i] : "?";
}

std::optional<RootfsMode> rootfs_mode_from_string(std::string_view name) {
  for (std::size_t i = 0; i < std::size(kRootfsModeNames); ++i)
    if (name == kRootfsModeNames[i]) return static_cast<RootfsMode>(i);
  return std::nullopt;
}

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

void make_dir(VmImpl& impl, const std::string& path, bool parents, std::uint32_t mode) {
  proto::FileOp op;
  op.op = proto::FileOpKind::Mkdir;
  op.path = path;
  op.mode = mode;
  op.flags = parents ? proto::kFileParents : 0;
  impl.file_op(op);
}

// A kernel boot. An auto-chosen KVM (`probation`) that does not bring the
// guest up in `timeout` is broken here: the boot is retried under TCG.
std::unique_ptr<VmImpl> boot_cold(const Image& image, const VmOptions& options, const VmHooks& hooks,
                                  const vm::AccelChoice& choice, std::chrono::milliseconds timeout, bool probation) {
  auto impl = std::make_unique<VmImpl>(options, hooks);
  try {
    impl->boot(image, choice.accel, choice.reason, timeout);
    return impl;
  } catch (const BootTimedOut& e) {
    if (!probation) throw Error(e.kind(), e.what());
  }
  log().warn("the guest did not boot under KVM within {} s; falling back to TCG", kKvmFirstBootLimit.count());
  impl = std::make_unique<VmImpl>(options, hooks);
  try {
    impl->boot(image, Accel::Tcg, "KVM did not boot a guest in time; using TCG", options.boot_timeout);
  } catch (const BootTimedOut& e2) {
    throw Error(e2.kind(), e2.what());
  }
  return impl;
}

// What a start settles before it resumes a template or boots: the image, the
// accelerator and the time the first boot may take (an auto-chosen KVM gets
// a bounded one: a hang means KVM is broken here).
struct StartPlan {
  Image image;
  vm::AccelChoice choice;
  bool probation = false;
  std::chrono::milliseconds timeout{};
};

StartPlan plan_start(const VmOptions& options) {
  init_logging_from_env();
  StartPlan p{ImageStore::default_store().resolve(options.image), vm::choose_accel(options.accel)};
  log().info("accelerator: {} ({})", to_string(p.choice.accel), p.choice.reason);
  log().info("image: {} ({})", p.image.display_name(), p.image.dir.string());
  p.probation = options.accel == Accel::Auto && p.choice.accel == Accel::Kvm;
  p.timeout = p.probation ? std::min<std::chrono::milliseconds>(options.boot_timeout, kKvmFirstBootLimit)
                          : options.boot_timeout;
  return p;
}

}  // namespace

void write_guest_file(VmImpl& vm, const std::string& path, std::string_view data, std::uint32_t mode) {
  write_chunks(vm, path, data, mode, false);
}

void install_mitm_ca(VmImpl& vm, const std::string& pem) {
  make_dir(vm, "/etc/gondolin/mitm", true, 0755);
  write_chunks(vm, "/etc/gondolin/mitm/ca.crt", pem, 0644, false);
  make_dir(vm, "/etc/ssl/certs", true, 0755);
  write_chunks(vm, "/etc/ssl/certs/ca-certificates.crt", "\n" + pem, 0644, true);
}

Vm::Vm(std::unique_ptr<VmImpl> impl) : impl_(std::move(impl)) {}
Vm::Vm(Vm&&) noexcept = default;
Vm& Vm::operator=(Vm&&) noexcept = default;
Vm::~Vm() = default;

Vm VmInternals::create(VmOptions options, VmHooks hooks) {
  const StartPlan plan = plan_start(options);
  // Most starts resume the image's boot template; the rest boot.
  vm::TemplateStart templated = vm::start_from_template(plan.image, options, hooks, plan.choice, plan.timeout);
  std::unique_ptr<VmImpl> impl = std::move(templated.vm);
  if (!impl) {
    impl = boot_cold(plan.image, options, hooks, plan.choice, plan.timeout, plan.probation);
    if (!templated.failure.empty()) log().warn("{}; booted cold", templated.failure);
  }
  impl->register_session();
  Vm vm(std::move(impl));
  if (auto* egress = vm.impl_->egress()) {
    // A template made with this CA already has it.
    if (!vm.info().from_template) install_mitm_ca(*vm.impl_, egress->ca_certificate_pem());
    // The proxy's host key under every allowed SSH name: `git clone
    // git@HOST:...` works without a prompt, and nothing else is trusted.
    std::string known_hosts;
    for (const auto& line : egress->guest_ssh_known_hosts()) known_hosts += line + "\n";
    if (!known_hosts.empty()) {
      vm.mkdir("/etc/ssh", true, 0755);
      vm.append_file("/etc/ssh/ssh_known_hosts", known_hosts);
    }
  }
  return vm;
}

Vm Vm::create(VmOptions options) { return VmInternals::create(std::move(options), VmHooks{}); }

std::string Vm::prepare_boot_template(VmOptions options) {
  const StartPlan plan = plan_start(options);
  return vm::prepare_template(plan.image, options, plan.choice, plan.timeout);
}

SnapshotInfo Vm::snapshot(const std::filesystem::path& dir, AfterSnapshot after) {
  return impl_->snapshot(dir, after == AfterSnapshot::KeepRunning, {});
}

PolicyState Vm::policy() const { return impl_->policy(std::nullopt, ::getuid()); }

PolicyState Vm::change_policy(const PolicyChange& change) { return impl_->policy(change, ::getuid()); }

std::string Vm::session_id() const { return impl_ ? impl_->session_id() : std::string(); }

GuestSshAccess Vm::enable_ssh() { return impl_->enable_ssh(); }

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

void Vm::mkdir(const std::string& path, bool parents, std::uint32_t mode) { make_dir(*impl_, path, parents, mode); }

const VmInfo& Vm::info() const { return impl_->info(); }
std::uint64_t Vm::guest_oom_kills() const { return impl_->guest_oom_kills(); }
bool Vm::running() const { return impl_ && impl_->running(); }

void Vm::close() {
  if (impl_) impl_->close();
}

}  // namespace gondolin
