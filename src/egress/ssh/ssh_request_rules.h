// What the proxy accepts from the guest inside an SSH session, as pure
// functions: exec commands (and how they are logged), environment requests
// and user names. Everything here sees guest-chosen bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace gondolin::egress {

inline constexpr std::size_t kMaxExecCommandBytes = 8192;

struct ExecCommandSummary {
  bool is_git = false;  // git-upload-pack / git-receive-pack / git-upload-archive / git-lfs-*
  std::string logged;   // git: the whole command with its repository; else only the first word
};

ExecCommandSummary summarize_exec_command(std::string_view command);

// Why an exec command is refused before anything is sent upstream; empty: acceptable.
std::string exec_command_problem(std::string_view command);

// The only environment variable forwarded upstream is GIT_PROTOCOL (so git
// can use protocol v2), with a value made of the characters git uses.
bool forwardable_env(std::string_view name, std::string_view value);

}  // namespace gondolin::egress
