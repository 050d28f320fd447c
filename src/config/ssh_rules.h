// Parsing and validation of SSH egress settings, shared by the CLI and the
// library. Every failure is a gondolin::Error (Usage) with one line naming the
// flag and what is wrong with it.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "config/host_name_rules.h"
#include "gondolin/ssh_options.h"

namespace gondolin::config {

// --ssh-allow-host HOST[:PORT]: a DNS name (lower-cased) and the real upstream port.
SshAllowedHost parse_ssh_allowed_host(std::string_view text);

// HOST=VALUE, as --ssh-key HOST=PATH and --ssh-user HOST=USER take; HOST is normalized.
std::pair<std::string, std::string> parse_ssh_host_assignment(std::string_view flag, std::string_view text);

// Checks a whole SshOptions before anything starts: valid and distinct hosts,
// key files and users only for allowed hosts, key files loadable without a
// passphrase, a credential for every host, the agent socket and known-hosts
// file present, sane limits.
void validate_ssh_options(const SshOptions& options);

// The agent socket the options select: agent_socket, else $SSH_AUTH_SOCK; empty if none or not use_agent.
std::string effective_agent_socket(const SshOptions& options);

// The allowed-host entry for a name the guest dialled (case-insensitive), or nullptr.
const SshAllowedHost* find_allowed_host(const SshOptions& options, std::string_view host);

// An upstream user name: 1-64 of letters, digits, '.', '_', '-', not starting with '-'.
bool valid_remote_user(std::string_view user);

}  // namespace gondolin::config
