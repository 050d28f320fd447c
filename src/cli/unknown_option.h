// One line for an option or argument a (sub)command does not know, naming
// it and, where one is close, the known option the user probably meant.
// Every option before `--` must be known: a misspelt safety flag
// (`--no-netwrok`) must never run the command under a policy nobody asked for.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace gondolin::cli {

// The deepest subcommand the parse reached ("gondolin image rm" → rm).
CLI::App& active_command(CLI::App& app);

// "unknown option '--alow-host' for 'gondolin exec' (did you mean --allow-host?)"
// or "unexpected argument 'x' for 'gondolin list'".
std::string describe_unexpected(const CLI::App& command, const std::string& argument);

// Throws gondolin::Error (Usage) describing the first of `extras`, if any.
void refuse_extras(const CLI::App& command, const std::vector<std::string>& extras);

}  // namespace gondolin::cli
