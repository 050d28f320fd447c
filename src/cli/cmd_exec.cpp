// `gondolin exec` and `gondolin bash`: boot a fresh VM, run one command in it.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/session_driver.h"
#include "cli/terminal.h"
#include "cli/unknown_option.h"
#include "cli/vm_flags.h"
#include "gondolin/error.h"
#include "gondolin/guest_ssh.h"
#include "gondolin/vm.h"

namespace gondolin::cli {
namespace {

struct RunFlags {
  VmFlags vm;
  bool interactive = false;
  bool tty = false;
  std::string workdir;
  std::string user;
  double timeout_s = 0;
  std::string shell_command;
  std::vector<std::string> argv;
  std::string resume;
  bool ssh = false;
};

void add_run_flags(CLI::App& cmd, RunFlags& f, bool is_exec) {
  f.vm.add_to(cmd);
  f.vm.add_listen_to(cmd);
  cmd.add_option("-w,--workdir,--cwd", f.workdir, "Working directory inside the guest (default: the image's)");
  cmd.add_option("-u,--user", f.user, "Run as UID[:GID] or root (default: the image's user, else root)");
  cmd.add_option("--timeout", f.timeout_s, "Kill the command after this many seconds (exit status 124)");
  cmd.add_option("--resume", f.resume, "Start from a snapshot (id, prefix or directory) instead of booting");
  cmd.add_flag("--ssh", f.ssh, "Let the host ssh into the VM while it runs; prints how (gondolin ssh ID does too)");
  if (is_exec) {
    cmd.add_flag("-i,--interactive", f.interactive, "Forward this process's stdin to the command");
    cmd.add_flag("-t,--tty", f.tty, "Run the command on a pseudo-terminal");
    cmd.add_option("-c", f.shell_command, "Run a shell string with /bin/sh -lc");
  }
}

// A SIGKILL from the guest's OOM killer deserves words: the kernel's console
// line may trail the exit by a moment.
void report_if_out_of_memory(const Vm& vm, std::uint64_t before, std::uint32_t memory_mib) {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  while (vm.guest_oom_kills() == before && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (vm.guest_oom_kills() == before) return;
  std::string size = memory_mib ? " (" + std::to_string(memory_mib) + " MiB)" : "";
  std::fprintf(stderr,
               "gondolin: the guest ran out of memory%s and its kernel killed the command; try a larger --memory\n",
               size.c_str());
}

// `description` names the command in `gondolin list` (default: its words).
int run(const RunFlags& f, const Command& command, bool tty, bool forward_stdin, std::string description = {}) {
  VmOptions vm_opts = f.vm.to_options();
  if (f.timeout_s < 0) throw Error(ErrorKind::Usage, "--timeout must be positive");
  ExecOptions exec_opts;
  exec_opts.cwd = f.workdir;
  if (!f.user.empty()) exec_opts.user = parse_guest_user(f.user);
  exec_opts.pty = tty;
  exec_opts.stdin = forward_stdin;
  if (f.timeout_s > 0) exec_opts.timeout = std::chrono::milliseconds(static_cast<long long>(f.timeout_s * 1000));
  if (tty) {
    WindowSize size = terminal_size(STDOUT_FILENO).value_or(terminal_size(STDIN_FILENO).value_or(WindowSize{}));
    exec_opts.rows = size.rows;
    exec_opts.cols = size.cols;
    if (const char* term = std::getenv("TERM"); term && *term) exec_opts.env.emplace_back("TERM", term);
  }
  if (description.empty())
    for (const auto& a : command.args()) description += (description.empty() ? "" : " ") + a;
  vm_opts.session_command = description;
  Vm vm = f.resume.empty() ? Vm::create(vm_opts) : Vm::resume(f.resume, vm_opts);
  if (f.ssh) print_guest_ssh(stderr, vm.enable_ssh());
  Process process = vm.spawn(command, exec_opts);
  DriveOptions drive;
  drive.forward_stdin = forward_stdin;
  drive.tty = tty;
  drive.timeout_s = f.timeout_s;
  // Needs no io thread: a stop signal's grace ran out, QEMU goes now.
  drive.force_stop = [pid = vm.info().qemu_pid] {
    if (pid > 0) ::kill(pid, SIGKILL);
  };
  CommandAdapter<Process> handle(process);
  const std::uint64_t oom_before = vm.guest_oom_kills();
  int code = drive_process(handle, drive);
  if (code == 128 + SIGKILL) report_if_out_of_memory(vm, oom_before, f.resume.empty() ? vm_opts.memory_mib : 0);
  vm.close();
  return code;
}

}  // namespace

void add_exec_command(CLI::App& app, Outcome& outcome) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* cmd =
      app.add_subcommand("exec", "Run a command in a fresh VM: exec [OPTIONS] -- CMD [ARG...] or exec -c 'SCRIPT'");
  add_run_flags(*cmd, *flags, true);
  // `exec ls -la` works too: option parsing stops at the first non-option.
  cmd->prefix_command();
  cmd->callback([flags, cmd, &outcome] {
    // Before `--` every word must be a known option: the command comes after it (or, without `--`, first non-option).
    if (outcome.trailing) refuse_extras(*cmd, cmd->remaining());
    flags->argv = outcome.trailing ? *outcome.trailing : cmd->remaining();
    if (!outcome.trailing && !flags->argv.empty() && flags->argv.front().starts_with("-"))
      refuse_extras(*cmd, flags->argv);
    const bool has_shell = !flags->shell_command.empty();
    if (has_shell == !flags->argv.empty())
      throw Error(ErrorKind::Usage, "exec needs either -- CMD [ARG...] or -c 'SCRIPT' (exactly one)");
    Command command = has_shell ? Command::shell(flags->shell_command) : Command::argv(flags->argv);
    outcome.exit_code = run(*flags, command, flags->tty, flags->interactive);
  });
}

void add_bash_command(CLI::App& app, Outcome& outcome) {
  auto flags = std::make_shared<RunFlags>();
  CLI::App* cmd = app.add_subcommand("bash", "Login shell, or -- CMD [ARG...], on a pty in a fresh VM");
  add_run_flags(*cmd, *flags, false);
  cmd->callback([flags, &outcome] {
    const bool has_command = outcome.trailing && !outcome.trailing->empty();
    Command command = Command::argv(has_command ? *outcome.trailing : login_shell_argv());
    // A pty only when stdin is a terminal. From a pipe or a file the command
    // reads stdin to its end, as with `exec -i`, so `bash </dev/null` ends and
    // `bash < script.sh` runs the script.
    const bool tty = ::isatty(STDIN_FILENO) != 0;
    outcome.exit_code = run(*flags, command, tty, true, has_command ? std::string{} : "bash -l");
  });
}

}  // namespace gondolin::cli
