// The SSH egress flags of every subcommand that boots a VM:
//   --ssh-allow-host HOST[:PORT]   (repeatable) the guest may ssh to HOST (port 22); the host connects to HOST:PORT
//   --ssh-agent [SOCK]             authenticate upstream with this ssh-agent (default $SSH_AUTH_SOCK)
//   --ssh-key HOST=PATH            (repeatable) authenticate to HOST with this unencrypted private key
//   --ssh-user HOST=USER           (repeatable) upstream user for HOST instead of the guest's
//   --ssh-known-hosts FILE         upstream host keys (default ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts)
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "gondolin/ssh_options.h"

namespace gondolin::cli {

struct SshFlags {
  std::vector<std::string> allow_hosts;
  std::string agent;
  std::vector<std::string> keys;
  std::vector<std::string> users;
  std::string known_hosts;

  void add_to(CLI::App& cmd);
  // Parses and validates; throws gondolin::Error (Usage) naming the bad flag.
  // No --ssh-allow-host: SSH egress stays off (and the other flags are an error).
  SshOptions to_options() const;

 private:
  CLI::Option* agent_option_ = nullptr;
};

}  // namespace gondolin::cli
