// What the proxy accepts from the guest inside an SSH session, as pure
// functions: exec commands (and how they are logged), environment requests
// and user names. Everything here sees guest-chosen bytes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "gondolin/ssh_options.h"

namespace gondolin::egress {

inline constexpr std::size_t kMaxExecCommandBytes = 8192;

struct ExecCommandSummary {
  bool is_git = false;  // git-upload-pack / git-receive-pack / git-upload-archive / git-lfs-*
  std::string logged;   // git: the whole command with its repository; else only the first word
};

ExecCommandSummary summarize_exec_command(std::string_view command);

// A git service invocation as git's ssh transport writes it.
struct GitCommand {
  std::string service;     // git-upload-pack, git-receive-pack, ...
  std::string repository;  // unquoted, as the guest named it
  std::string operation;   // git-lfs: "upload" or "download"; else empty
  // Writes to the repository: receive-pack, and any git-lfs operation but download.
  bool is_push() const;
};
std::optional<GitCommand> parse_git_command(std::string_view command);

// Why `command` to `host` is refused by the SSH git policy; empty: allowed
// (always, while the policy is inactive).
std::string git_policy_problem(const SshGitPolicy& policy, std::string_view host, std::string_view command);

// Why an exec command is refused before anything is sent upstream; empty: acceptable.
std::string exec_command_problem(std::string_view command);

// The only environment variable forwarded upstream is GIT_PROTOCOL (so git
// can use protocol v2), with a value made of the characters git uses.
bool forwardable_env(std::string_view name, std::string_view value);

}  // namespace gondolin::egress
