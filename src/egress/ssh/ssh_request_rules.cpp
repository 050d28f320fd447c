#include "egress/ssh/ssh_request_rules.h"

#include <algorithm>
#include <array>

#include "config/ssh_git_rules.h"

namespace gondolin::egress {
namespace {

bool is_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

bool printable(std::string_view s) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

constexpr std::array<std::string_view, 5> kGitServices = {"git-upload-pack", "git-receive-pack", "git-upload-archive",
                                                          "git-lfs-authenticate", "git-lfs-transfer"};

// SERVICE 'PATH' (single quotes, embedded quotes as '\'' ) or SERVICE PATH,
// optionally followed by plain words (git-lfs adds the operation).
std::optional<GitCommand> parse_arguments(std::string_view service, std::string_view rest) {
  if (rest.size() < 2 || rest.front() != ' ') return std::nullopt;
  rest.remove_prefix(1);
  GitCommand git;
  git.service = std::string(service);
  if (rest.front() == '\'') {
    std::size_t i = 1;
    for (;;) {
      std::size_t close = rest.find('\'', i);
      if (close == std::string_view::npos) return std::nullopt;
      git.repository.append(rest.substr(i, close - i));
      // '\'' continues the quoted string with a quote.
      if (rest.substr(close, 4) == "'\\''") {
        git.repository += '\'';
        i = close + 4;
        continue;
      }
      rest.remove_prefix(close + 1);
      break;
    }
  } else {
    std::size_t end = std::min(rest.find(' '), rest.size());
    git.repository = std::string(rest.substr(0, end));
    rest.remove_prefix(end);
  }
  for (char c : rest)
    if (!(is_alnum(c) || c == ' ' || c == '-' || c == '_' || c == '.')) return std::nullopt;
  std::size_t word = rest.find_first_not_of(' ');
  if (word != std::string_view::npos) git.operation = std::string(rest.substr(word, rest.find(' ', word) - word));
  return git;
}

}  // namespace

bool GitCommand::is_push() const {
  if (service == "git-receive-pack") return true;
  return service.starts_with("git-lfs-") && operation != "download";
}

std::optional<GitCommand> parse_git_command(std::string_view command) {
  std::size_t start = command.find_first_not_of(" \t");
  if (start == std::string_view::npos) return std::nullopt;
  std::string_view trimmed = command.substr(start);
  std::string_view first = trimmed.substr(0, trimmed.find_first_of(" \t\r\n"));
  for (auto service : kGitServices)
    if (first == service && printable(trimmed)) return parse_arguments(service, trimmed.substr(first.size()));
  return std::nullopt;
}

ExecCommandSummary summarize_exec_command(std::string_view command) {
  ExecCommandSummary s;
  std::size_t start = command.find_first_not_of(" \t");
  if (start == std::string_view::npos) return s;
  std::string_view trimmed = command.substr(start);
  if (parse_git_command(trimmed)) {
    s.is_git = true;
    s.logged = std::string(trimmed);
    return s;
  }
  s.logged = std::string(trimmed.substr(0, std::min<std::size_t>(trimmed.find_first_of(" \t\r\n"), 256)));
  return s;
}

std::string git_policy_problem(const SshGitPolicy& policy, std::string_view host, std::string_view command) {
  if (!policy.active()) return {};
  auto git = parse_git_command(command);
  if (!git) return "only git commands are allowed by the SSH git policy";
  std::string named = git->service + " '" + git->repository.substr(0, 200) + "'";
  if (!policy.push && git->is_push())
    return "pushes are not allowed by the SSH git policy (refused " + named + " on " + std::string(host) + ")";
  if (!policy.repos.empty() && !config::git_repo_allowed(policy.repos, host, git->repository))
    return "repository '" + git->repository.substr(0, 200) + "' on " + std::string(host) +
           " is not one the SSH git policy allows";
  return {};
}

std::string exec_command_problem(std::string_view command) {
  if (command.find_first_not_of(" \t") == std::string_view::npos) return "empty command";
  if (command.size() > kMaxExecCommandBytes) return "command longer than 8192 bytes";
  return {};
}

bool forwardable_env(std::string_view name, std::string_view value) {
  if (name != "GIT_PROTOCOL") return false;
  if (value.empty() || value.size() > 128) return false;
  for (char c : value)
    if (!(is_alnum(c) || c == '=' || c == ':' || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

}  // namespace gondolin::egress
