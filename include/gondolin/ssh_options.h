// SSH egress: which hosts the guest may reach over SSH, and how the host
// authenticates to them on the guest's behalf.
//
// The guest never holds credentials. Its SSH connection ends in gondolin,
// which presents its own host key, accepts the guest without authentication,
// and runs each `exec` request (git's upload-pack/receive-pack, or a plain
// command) over a new upstream session that the host opens, verifies against
// OpenSSH known_hosts and authenticates with the host's agent or a key file.
// Shells, ptys, subsystems (sftp) and every kind of forwarding are refused.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gondolin {

// The guest dials `host` on `guest_port`; the host connects to `host`:`port`.
struct SshAllowedHost {
  std::string host;               // DNS name, lower case, no trailing dot
  std::uint16_t port = 22;        // the real upstream port
  std::uint16_t guest_port = 22;  // the port the guest's ssh dials (ssh -p)
};

// Which git operations the guest may run over SSH. Inactive (everything the
// proxy otherwise allows) while `repos` is empty and `push` is true; active,
// only git commands pass: to a listed repository, and pushes only if `push`.
struct SshGitPolicy {
  // "HOST:PATH" or "PATH" (any allowed host); PATH is compared without a
  // leading '/' or trailing ".git"; a last segment '*' matches anything below.
  std::vector<std::string> repos;
  bool push = true;  // git-receive-pack, and git-lfs "upload"
  bool active() const { return !repos.empty() || !push; }
};

struct SshOptions {
  std::vector<SshAllowedHost> allowed_hosts;  // empty: SSH egress is off

  // Upstream authentication. A key file configured for the host wins;
  // otherwise the agent is used. A host with neither is a configuration error.
  bool use_agent = false;
  std::string agent_socket;                            // with use_agent; empty: $SSH_AUTH_SOCK
  std::map<std::string, std::string> key_files;        // host -> private key file
  std::map<std::string, std::string> key_passphrases;  // host -> its key file's passphrase (encrypted keys)
  std::map<std::string, std::string> users;            // host -> upstream user (default: the guest's)

  // Upstream host keys: a key is trusted if any file lists it for the host,
  // refused if any marks it @revoked. Empty: ~/.ssh/known_hosts and
  // /etc/ssh/ssh_known_hosts.
  std::vector<std::string> known_hosts_files;

  SshGitPolicy git;

  // Where the proxy's own host key lives. Empty: $XDG_CONFIG_HOME/gondolin
  // (default ~/.config/gondolin).
  std::string host_key_dir;

  unsigned max_connections = 16;                        // concurrent guest SSH connections
  unsigned max_sessions = 8;                            // concurrent upstream sessions (one per exec)
  std::chrono::milliseconds handshake_timeout{20'000};  // guest and upstream, each
  std::chrono::milliseconds idle_timeout{600'000};      // no byte either way
};

}  // namespace gondolin
