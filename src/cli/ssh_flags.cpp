#include "cli/ssh_flags.h"

#include "config/ssh_rules.h"
#include "gondolin/error.h"

namespace gondolin::cli {

void SshFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--ssh-allow-host", allow_hosts,
                 "Let the guest ssh to HOST on PORT (default 22); the host connects to HOST on upstream-port (default "
                 "PORT) and authenticates (repeatable)")
      ->type_name("HOST[:PORT][,upstream-port=N]")
      ->allow_extra_args(false);
  agent_option_ = cmd.add_option("--ssh-agent", agent,
                                 "Authenticate SSH upstream with this ssh-agent socket (default $SSH_AUTH_SOCK)")
                      ->type_name("[SOCK]")
                      ->expected(0, 1);
  cmd.add_option("--ssh-key", keys,
                 "Authenticate SSH upstream to HOST with this private key file; an encrypted key's passphrase comes "
                 "from $VAR (repeatable)")
      ->type_name("HOST=PATH[,passphrase-env=VAR]")
      ->allow_extra_args(false);
  cmd.add_option("--ssh-user", users, "Upstream SSH user for HOST instead of the one the guest names (repeatable)")
      ->type_name("HOST=USER")
      ->allow_extra_args(false);
  cmd.add_option("--ssh-known-hosts", known_hosts,
                 "Upstream SSH host keys (repeatable; default ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts)")
      ->type_name("FILE")
      ->allow_extra_args(false);
  cmd.add_option("--ssh-git-repo", git_repos,
                 "Over SSH allow only git commands on this repository; PATH may end in /* (repeatable)")
      ->type_name("[HOST:]PATH")
      ->allow_extra_args(false);
  cmd.add_flag("--ssh-git-no-push", git_no_push, "Over SSH allow only git commands, and no pushes");
}

SshOptions SshFlags::to_options(SshOptions o) const {
  const bool agent_given = agent_option_ && agent_option_->count() > 0;
  for (const auto& h : allow_hosts) o.allowed_hosts.push_back(config::parse_ssh_allowed_host(h));
  if (o.allowed_hosts.empty()) {
    if (agent_given || !keys.empty() || !users.empty() || !known_hosts.empty() || !git_repos.empty() || git_no_push)
      throw Error(ErrorKind::Usage,
                  "--ssh-agent, --ssh-key, --ssh-user, --ssh-known-hosts and --ssh-git-* need at least one "
                  "--ssh-allow-host");
    return o;
  }
  if (agent_given) {
    o.use_agent = true;
    o.agent_socket = agent;
  }
  for (const auto& k : keys) {
    auto key = config::parse_ssh_key(k);
    if (!o.key_files.emplace(key.host, key.path).second)
      throw Error(ErrorKind::Usage, "--ssh-key: " + key.host + " given twice");
    if (key.passphrase) o.key_passphrases[key.host] = *key.passphrase;
  }
  for (const auto& u : users) {
    auto [host, user] = config::parse_ssh_host_assignment("--ssh-user", u);
    if (!o.users.emplace(host, user).second) throw Error(ErrorKind::Usage, "--ssh-user: " + host + " given twice");
  }
  o.known_hosts_files.insert(o.known_hosts_files.end(), known_hosts.begin(), known_hosts.end());
  for (const auto& r : git_repos) o.git.repos.push_back(config::parse_ssh_git_repo(r));
  if (git_no_push) o.git.push = false;
  config::validate_ssh_options(o);
  return o;
}

}  // namespace gondolin::cli
