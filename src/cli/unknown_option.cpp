#include "cli/unknown_option.h"

#include <algorithm>

#include "gondolin/error.h"

namespace gondolin::cli {
namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string command_path(const CLI::App& command) {
  std::string path = command.get_name();
  for (const CLI::App* p = command.get_parent(); p; p = p->get_parent()) path = p->get_name() + " " + path;
  return path;
}

// The known option nearest to `written` ("--alow-host=x" → "--allow-host"), or "".
std::string closest_option(const CLI::App& command, const std::string& written) {
  std::string bare = written.substr(0, written.find('='));
  const bool is_long = bare.rfind("--", 0) == 0;
  bare.erase(0, bare.find_first_not_of('-'));
  if (bare.size() < 3) return "";  // "-l" near "-h" helps nobody
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(2, bare.size() / 3) + 1;
  for (const CLI::App* c = &command; c; c = c->get_parent()) {
    for (const CLI::Option* opt : c->get_options()) {
      std::vector<std::string> names = opt->get_lnames();
      if (!is_long) names.insert(names.end(), opt->get_snames().begin(), opt->get_snames().end());
      for (const auto& name : names) {
        const std::size_t d = edit_distance(bare, name);
        if (d < best_distance) {
          best_distance = d;
          best = (name.size() == 1 ? "-" : "--") + name;
        }
      }
    }
  }
  return best;
}

}  // namespace

CLI::App& active_command(CLI::App& app) {
  CLI::App* command = &app;
  for (;;) {
    auto parsed = command->get_subcommands();
    if (parsed.empty()) return *command;
    command = parsed.front();
  }
}

std::string describe_unexpected(const CLI::App& command, const std::string& argument) {
  if (argument.size() < 2 || argument[0] != '-')
    return "unexpected argument '" + argument + "' for '" + command_path(command) + "'";
  std::string out = "unknown option '" + argument + "' for '" + command_path(command) + "'";
  if (auto near = closest_option(command, argument); !near.empty()) out += " (did you mean " + near + "?)";
  return out;
}

void refuse_extras(const CLI::App& command, const std::vector<std::string>& extras) {
  if (!extras.empty()) throw Error(ErrorKind::Usage, describe_unexpected(command, extras.front()));
}

}  // namespace gondolin::cli
