// Each subcommand registers itself on the app and reports its exit status.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "gondolin/guest_ssh.h"

namespace gondolin::cli {

// Set by the subcommand that ran; main returns it.
struct Outcome {
  int exit_code = 0;
  // Everything after the first "--" on the command line: the guest command,
  // taken verbatim so no option parser can misread it.
  std::optional<std::vector<std::string>> trailing;
};

void add_exec_command(CLI::App& app, Outcome& outcome);
void add_bash_command(CLI::App& app, Outcome& outcome);
void add_build_command(CLI::App& app, Outcome& outcome);
void add_image_command(CLI::App& app, Outcome& outcome);
void add_session_commands(CLI::App& app, Outcome& outcome);
void add_policy_command(CLI::App& app, Outcome& outcome);
void add_ssh_command(CLI::App& app, Outcome& outcome);

// How to ssh into a guest (gondolin ssh --print, bash --ssh).
void print_guest_ssh(std::FILE* out, const GuestSshAccess& access);

}  // namespace gondolin::cli
