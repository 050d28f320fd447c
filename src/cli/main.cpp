// gondolin: run untrusted code in local micro-VMs the host fully controls.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/signal_watch.h"
#include "cli/unknown_option.h"
#include "gondolin/error.h"
#include "gondolin/log.h"
#include "gondolin/version.h"
#include "gondolin/vm.h"
#include "vm/qemu_version.h"

namespace {

// `gondolin help [COMMAND]` and `gondolin version`.
void add_help_and_version(CLI::App& app) {
  using namespace gondolin;
  auto* help = app.add_subcommand("help", "Show help (gondolin help COMMAND for one command)");
  auto help_topic = std::make_shared<std::string>();
  help->add_option("command", *help_topic);
  help->callback([&app, topic = help_topic] {
    CLI::App* target = &app;
    if (!topic->empty()) {
      try {
        target = app.get_subcommand(*topic);
      } catch (const CLI::OptionNotFound&) {
        throw Error(ErrorKind::Usage, "no such command '" + *topic + "'");
      }
    }
    std::printf("%s", app.get_formatter()->make_help(target, target->get_name(), CLI::AppFormatMode::Normal).c_str());
  });
  app.add_subcommand("version", "Show the version")->callback([] {
    std::printf("gondolin %s (agent protocol %u)\n%s\n", kVersion, agent_protocol_version(),
                describe_default_qemu().c_str());
  });
}

// Splits argv at the first "--": CLI11 parses what comes before (returned,
// reversed as CLI11 takes it), the rest is the command (outcome.trailing).
std::vector<std::string> split_at_double_dash(int argc, char** argv, gondolin::cli::Outcome& outcome) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      outcome.trailing = std::vector<std::string>(argv + i + 1, argv + argc);
      break;
    }
    args.emplace_back(argv[i]);
  }
  std::reverse(args.begin(), args.end());
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gondolin;
  // Before any thread exists, so every thread inherits the mask and the
  // signal watch thread alone receives these signals.
  cli::SignalWatch::block_handled_signals();
  cli::SignalWatch::start();

  CLI::App app{"gondolin: run untrusted code in local micro-VMs whose every file, host and secret the host decides"};
  app.name("gondolin");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("gondolin ") + kVersion + " (agent protocol " +
                                        std::to_string(agent_protocol_version()) + ")");
  std::string log_level;
  const char* log_help = "trace, debug, info, warn (default), error or off; also $GONDOLIN_LOG";
  app.add_option("--log-level", log_level, log_help);

  cli::Outcome outcome;
  cli::add_exec_command(app, outcome);
  cli::add_bash_command(app, outcome);
  cli::add_build_command(app, outcome);
  cli::add_image_command(app, outcome);
  cli::add_session_commands(app, outcome);
  cli::add_policy_command(app, outcome);
  cli::add_ssh_command(app, outcome);
  add_help_and_version(app);
  // --log-level is accepted before or after the subcommand name.
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() != "help" && sub->get_name() != "version") sub->add_option("--log-level", log_level, log_help);

  // Apply --log-level before any subcommand callback runs.
  app.parse_complete_callback([&] {
    if (!log_level.empty()) set_log_level(log_level);
  });

  std::vector<std::string> args = split_at_double_dash(argc, argv, outcome);

  try {
    app.parse(args);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    auto extra = app.remaining(true);
    CLI::App& command = cli::active_command(app);
    if (!extra.empty() && app.get_subcommands().empty() && extra.front().rfind("-", 0) != 0)
      std::fprintf(stderr, "gondolin: unknown command '%s' (see gondolin help)\n", extra.front().c_str());
    else if (!extra.empty())
      std::fprintf(stderr, "gondolin: %s\n", cli::describe_unexpected(command, extra.front()).c_str());
    else
      std::fprintf(stderr, "gondolin: %s (see gondolin --help)\n", e.what());
    return cli::kExitGondolinFailed;
  } catch (const Error& e) {
    std::fprintf(stderr, "gondolin: %s\n", e.what());
    return cli::kExitGondolinFailed;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gondolin: internal error: %s\n", e.what());
    return cli::kExitGondolinFailed;
  }
  return outcome.exit_code;
}
