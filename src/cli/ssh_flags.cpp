#include "cli/ssh_flags.h"

#include "config/ssh_rules.h"
#include "gondolin/error.h"

namespace gondolin::cli {

void SshFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--ssh-allow-host", allow_hosts,
                 "Let the guest ssh to HOST (port 22); the host connects to HOST:PORT (default 22) and authenticates "
                 "(repeatable)")
      ->type_name("HOST[:PORT]")
      ->allow_extra_args(false);
  agent_option_ = cmd.add_option("--ssh-agent", agent,
                                 "Authenticate SSH upstream with this ssh-agent socket (default $SSH_AUTH_SOCK)")
                      ->type_name("[SOCK]")
                      ->expected(0, 1);
  cmd.add_option("--ssh-key", keys, "Authenticate SSH upstream to HOST with this private key file (repeatable)")
      ->type_name("HOST=PATH")
      ->allow_extra_args(false);
  cmd.add_option("--ssh-user", users, "Upstream SSH user for HOST instead of the one the guest names (repeatable)")
      ->type_name("HOST=USER")
      ->allow_extra_args(false);
  cmd.add_option("--ssh-known-hosts", known_hosts,
                 "Upstream SSH host keys (default ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts)")
      ->type_name("FILE");
}

SshOptions SshFlags::to_options() const {
  SshOptions o;
  bool agent_given = agent_option_ && agent_option_->count() > 0;
  if (allow_hosts.empty()) {
    if (agent_given || !keys.empty() || !users.empty() || !known_hosts.empty())
      throw Error(ErrorKind::Usage,
                  "--ssh-agent, --ssh-key, --ssh-user and --ssh-known-hosts need at least one --ssh-allow-host");
    return o;
  }
  for (const auto& h : allow_hosts) o.allowed_hosts.push_back(config::parse_ssh_allowed_host(h));
  o.use_agent = agent_given;
  o.agent_socket = agent;
  for (const auto& k : keys) {
    auto [host, path] = config::parse_ssh_host_assignment("--ssh-key", k);
    if (!o.key_files.emplace(host, path).second) throw Error(ErrorKind::Usage, "--ssh-key: " + host + " given twice");
  }
  for (const auto& u : users) {
    auto [host, user] = config::parse_ssh_host_assignment("--ssh-user", u);
    if (!o.users.emplace(host, user).second) throw Error(ErrorKind::Usage, "--ssh-user: " + host + " given twice");
  }
  o.known_hosts_file = known_hosts;
  config::validate_ssh_options(o);
  return o;
}

}  // namespace gondolin::cli
