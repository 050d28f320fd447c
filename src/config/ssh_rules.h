// Parsing and validation of SSH egress settings, shared by the CLI and the
// library. Every failure is a gondolin::Error (Usage) with one line naming the
// flag and what is wrong with it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "config/host_name_rules.h"
#include "gondolin/ssh_options.h"

namespace gondolin::config {

// --ssh-allow-host HOST[:PORT][,upstream-port=N]: a DNS name (lower-cased),
// the port the guest dials (default 22) and the real upstream port (default:
// the guest's). `flag` names the source in errors.
SshAllowedHost parse_ssh_allowed_host(std::string_view text, std::string_view flag = "--ssh-allow-host");
// The same text back, shortest form (what snapshots record).
std::string format_ssh_allowed_host(const SshAllowedHost& host);

// HOST=VALUE, as --ssh-key HOST=PATH and --ssh-user HOST=USER take; HOST is normalized.
std::pair<std::string, std::string> parse_ssh_host_assignment(std::string_view flag, std::string_view text);

// --ssh-key HOST=PATH[,passphrase-env=VAR]: VAR (a valid environment name)
// names the host variable holding the key's passphrase; it is read here.
struct SshKeySetting {
  std::string host, path;
  std::optional<std::string> passphrase;  // set when passphrase-env was given
};
SshKeySetting parse_ssh_key(std::string_view text, std::string_view flag = "--ssh-key");

// --ssh-git-repo [HOST:]PATH: checked and normalized (host lower-cased, PATH
// without leading '/' or trailing '/' and ".git"; no '.' or '..' segments).
std::string parse_ssh_git_repo(std::string_view text, std::string_view flag = "--ssh-git-repo");

// Checks a whole SshOptions before anything starts: valid and distinct
// host/port pairs, key files, passphrases and users only for allowed hosts,
// key files that load (with their passphrase, if encrypted), a credential
// for every host, the agent socket and known-hosts files present, git
// repositories for allowed hosts, sane limits.
void validate_ssh_options(const SshOptions& options);

// The agent socket the options select: agent_socket, else $SSH_AUTH_SOCK; empty if none or not use_agent.
std::string effective_agent_socket(const SshOptions& options);

// The allowed-host entry for a name and port the guest dialled (the name
// case-insensitive), or nullptr. Without a port: the first entry for the name.
const SshAllowedHost* find_allowed_host(const SshOptions& options, std::string_view host,
                                        std::optional<std::uint16_t> guest_port = std::nullopt);

// An upstream user name: 1-64 of letters, digits, '.', '_', '-', not starting with '-'.
bool valid_remote_user(std::string_view user);

}  // namespace gondolin::config
