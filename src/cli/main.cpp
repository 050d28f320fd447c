// gondolin: run untrusted code in local micro-VMs the host fully controls.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/session_driver.h"
#include "gondolin/error.h"
#include "gondolin/version.h"
#include "gondolin/vm.h"
#include "proto/control_protocol.h"
#include "util/logging.h"

int main(int argc, char** argv) {
  using namespace gondolin;
  // Before any thread exists, so every thread inherits the mask and the
  // session driver alone receives these signals.
  cli::block_forwarded_signals();

  CLI::App app{"gondolin: run untrusted code in local micro-VMs whose every file, host and secret the host decides"};
  app.name("gondolin");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("gondolin ") + kVersion + " (agent protocol " +
                                        std::to_string(proto::kProtocolVersion) + ")");
  std::string log_level;
  app.add_option("--log-level", log_level, "trace, debug, info, warn (default), error or off; also $GONDOLIN_LOG")
      ->group("Global");
  app.fallthrough();

  cli::Outcome outcome;
  cli::add_exec_command(app, outcome);
  cli::add_bash_command(app, outcome);
  cli::add_build_command(app, outcome);
  cli::add_image_command(app, outcome);
  app.add_subcommand("help", "Show help")->callback([&app] { throw CLI::CallForHelp(); });
  app.add_subcommand("version", "Show the version")->callback([] {
    std::printf("gondolin %s (agent protocol %u)\n", kVersion, static_cast<unsigned>(proto::kProtocolVersion));
  });

  // Apply --log-level before any subcommand callback runs.
  app.parse_complete_callback([&] {
    if (!log_level.empty()) set_log_level(log_level);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
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
