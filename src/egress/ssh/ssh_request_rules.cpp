#include "egress/ssh/ssh_request_rules.h"

#include <array>

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

// A git service invocation as git's ssh transport writes it: SERVICE 'PATH'
// (single quotes, embedded quotes as '\'' ), optionally followed by plain
// words (git-lfs adds the operation).
bool well_formed_git_arguments(std::string_view rest) {
  if (rest.empty() || rest.front() != ' ') return false;
  rest.remove_prefix(1);
  if (rest.empty()) return false;
  if (rest.front() == '\'') {
    std::size_t i = 1;
    for (;;) {
      std::size_t close = rest.find('\'', i);
      if (close == std::string_view::npos) return false;
      // '\'' continues the quoted string.
      if (rest.substr(close, 4) == "'\\''") {
        i = close + 4;
        continue;
      }
      rest.remove_prefix(close + 1);
      break;
    }
  } else {
    std::size_t end = rest.find(' ');
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  for (char c : rest)
    if (!(is_alnum(c) || c == ' ' || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

}  // namespace

ExecCommandSummary summarize_exec_command(std::string_view command) {
  ExecCommandSummary s;
  std::size_t start = command.find_first_not_of(" \t");
  if (start == std::string_view::npos) return s;
  std::string_view trimmed = command.substr(start);
  std::size_t end = trimmed.find_first_of(" \t\r\n");
  std::string_view first = trimmed.substr(0, end);
  for (auto service : kGitServices) {
    if (first == service && printable(trimmed) && well_formed_git_arguments(trimmed.substr(first.size()))) {
      s.is_git = true;
      s.logged = std::string(trimmed);
      return s;
    }
  }
  s.logged = std::string(first.substr(0, 256));
  return s;
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
