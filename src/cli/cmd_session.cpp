// `gondolin list`, `gondolin attach`, `gondolin snapshot`: sessions seen from
// other terminals of the same user.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/session_driver.h"
#include "cli/terminal.h"
#include "cli/vm_flags.h"
#include "gondolin/error.h"
#include "gondolin/session.h"

namespace gondolin::cli {
namespace {

constexpr char kDetachKey = 0x1d;  // Ctrl-]

std::string human_age(double seconds) {
  char buf[32];
  if (seconds < 120)
    std::snprintf(buf, sizeof buf, "%.0fs", seconds);
  else if (seconds < 7200)
    std::snprintf(buf, sizeof buf, "%.0fm", seconds / 60);
  else
    std::snprintf(buf, sizeof buf, "%.1fh", seconds / 3600);
  return buf;
}

std::string human_size(std::uint64_t bytes) {
  char buf[32];
  if (bytes < (1u << 20))
    std::snprintf(buf, sizeof buf, "%.0f KiB", static_cast<double>(bytes) / 1024);
  else
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

void add_list_command(CLI::App& app, Outcome& outcome) {
  auto json_out = std::make_shared<bool>(false);
  auto* list = app.add_subcommand("list", "List running sessions (VMs) of this user");
  list->add_flag("--json", *json_out, "Machine-readable output");
  list->callback([json_out, &outcome] {
    auto sessions = Session::list();
    if (*json_out) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& s : sessions)
        arr.push_back({{"id", s.id},
                       {"pid", s.pid},
                       {"image", s.image},
                       {"started", s.started},
                       {"age_seconds", s.age_seconds},
                       {"command", s.command},
                       {"accel", s.accel},
                       {"state", s.state},
                       {"mounts", s.mounts},
                       {"network", s.network}});
      std::printf("%s\n", arr.dump(2).c_str());
    } else {
      std::printf("%-14s %-6s %-8s %-36s %s\n", "ID", "AGE", "STATE", "IMAGE", "COMMAND");
      for (const auto& s : sessions)
        std::printf("%-14s %-6s %-8s %-36s %s\n", s.id.substr(0, 12).c_str(), human_age(s.age_seconds).c_str(),
                    s.state.c_str(), s.image.c_str(), s.command.c_str());
    }
    outcome.exit_code = 0;
  });
}

void add_attach_command(CLI::App& app, Outcome& outcome) {
  struct AttachFlags {
    std::string id;
    std::string workdir;
    std::string user;
    std::vector<std::string> env;
  };
  auto af = std::make_shared<AttachFlags>();
  auto* attach = app.add_subcommand("attach", "Run a shell (or -- CMD) in a running session; Ctrl-] detaches");
  attach->add_option("session", af->id, "Session id or unique prefix")->required();
  attach->add_option("-w,--workdir,--cwd", af->workdir, "Working directory inside the guest (default: the image's)");
  attach->add_option("-u,--user", af->user, "Run as UID[:GID] or root (default: the image's user, else root)");
  attach->add_option("-e,--env", af->env, "Environment variable KEY=VALUE")->allow_extra_args(false);
  attach->callback([af, &outcome] {
    SessionInfo s = Session::find(af->id);
    Command command =
        Command::argv(outcome.trailing && !outcome.trailing->empty() ? *outcome.trailing : login_shell_argv());
    // As `bash`: a pty for a terminal, stdin read to its end otherwise.
    const bool tty = ::isatty(STDIN_FILENO) != 0;
    ExecOptions options;
    options.stdin = true;
    options.pty = tty;
    WindowSize size = terminal_size(STDOUT_FILENO).value_or(terminal_size(STDIN_FILENO).value_or(WindowSize{}));
    options.rows = size.rows;
    options.cols = size.cols;
    options.cwd = af->workdir;
    if (!af->user.empty()) options.user = parse_guest_user(af->user);
    if (const char* term = std::getenv("TERM"); tty && term && *term) options.env.emplace_back("TERM", term);
    for (const auto& e : af->env) options.env.push_back(parse_env_assignment(e));
    AttachedProcess attached = Session::attach(s, command, options);
    CommandAdapter<AttachedProcess> handle(attached);
    DriveOptions drive;
    drive.forward_stdin = true;
    drive.tty = tty;
    drive.detach_key = kDetachKey;
    outcome.exit_code = drive_process(handle, drive);
  });
}

void add_snapshot_command(CLI::App& app, Outcome& outcome) {
  struct SnapshotFlags {
    std::string id;
    std::string output;
    std::string rm_ref;
    bool keep_running = false;
  };
  auto sf = std::make_shared<SnapshotFlags>();
  auto* snap = app.add_subcommand(
      "snapshot", "Save a running session (memory included) and stop it (or --keep-running); or: snapshot ls|rm");
  snap->add_option("session", sf->id, "Session id or unique prefix");
  snap->add_option("-o,--output", sf->output, "Snapshot directory (default: the snapshot store)");
  snap->add_flag("--keep-running", sf->keep_running,
                 "The session continues after the snapshot (fork a live session: resume the snapshot N times)");
  snap->callback([sf, snap, &outcome] {
    if (!snap->get_subcommands().empty()) return;
    if (sf->id.empty()) throw Error(ErrorKind::Usage, "snapshot needs a session id (see gondolin list)");
    SessionInfo s = Session::find(sf->id);
    SnapshotInfo info = Session::snapshot(s, sf->output, sf->keep_running);
    std::printf("%s\n", info.id.c_str());
    std::fprintf(stderr, "gondolin: saved session %s as snapshot %s in %s (%s, paused %.2f s)%s\n",
                 s.id.substr(0, 12).c_str(), info.id.c_str(), info.dir.c_str(), human_size(info.state_bytes).c_str(),
                 info.save_seconds, sf->keep_running ? "; the session keeps running" : "");
    outcome.exit_code = 0;
  });
  snap->add_subcommand("ls", "List snapshots")->callback([&outcome] {
    std::printf("%-18s %-22s %-10s %s\n", "ID", "CREATED", "SIZE", "IMAGE");
    for (const auto& s : list_snapshots())
      std::printf("%-18s %-22s %-10s %s\n", s.id.c_str(), s.created.c_str(), human_size(s.state_bytes).c_str(),
                  s.image.c_str());
    outcome.exit_code = 0;
  });
  auto* rm = snap->add_subcommand("rm", "Delete a snapshot");
  rm->add_option("snapshot", sf->rm_ref, "Snapshot id, prefix or directory")->required();
  rm->callback([sf, &outcome] {
    remove_snapshot(sf->rm_ref);
    outcome.exit_code = 0;
  });
}

}  // namespace

void add_session_commands(CLI::App& app, Outcome& outcome) {
  add_list_command(app, outcome);
  add_attach_command(app, outcome);
  add_snapshot_command(app, outcome);
}

}  // namespace gondolin::cli
