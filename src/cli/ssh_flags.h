// The SSH egress flags of every subcommand that boots a VM:
//   --ssh-allow-host HOST[:PORT][,upstream-port=N]  (repeatable) the guest may ssh to HOST on PORT (default 22);
//                                  the host connects to HOST:N (default: PORT)
//   --ssh-agent [SOCK]             authenticate upstream with this ssh-agent (default $SSH_AUTH_SOCK)
//   --ssh-key HOST=PATH[,passphrase-env=VAR]  (repeatable) authenticate to HOST with this private key
//   --ssh-user HOST=USER           (repeatable) upstream user for HOST instead of the guest's
//   --ssh-known-hosts FILE         (repeatable) upstream host keys (default ~/.ssh/known_hosts and
//                                  /etc/ssh/ssh_known_hosts)
//   --ssh-git-repo [HOST:]PATH     (repeatable) only git commands on these repositories
//   --ssh-git-no-push              only git commands, and no pushes
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
  std::vector<std::string> known_hosts;
  std::vector<std::string> git_repos;
  bool git_no_push = false;

  void add_to(CLI::App& cmd);
  // Adds the flags to `base` (a policy file's "ssh" settings), then parses and
  // validates; throws gondolin::Error (Usage) naming the bad flag. No allowed
  // host at all: SSH egress stays off (and the other flags are an error).
  SshOptions to_options(SshOptions base = {}) const;

 private:
  CLI::Option* agent_option_ = nullptr;
};

}  // namespace gondolin::cli
