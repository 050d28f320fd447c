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

// The guest dials `host` on port 22; the host connects to `host`:`port`.
struct SshAllowedHost {
  std::string host;         // DNS name, lower case, no trailing dot
  std::uint16_t port = 22;  // the real upstream port
};

struct SshOptions {
  std::vector<SshAllowedHost> allowed_hosts;  // empty: SSH egress is off

  // Upstream authentication. A key file configured for the host wins;
  // otherwise the agent is used. A host with neither is a configuration error.
  bool use_agent = false;
  std::string agent_socket;                      // with use_agent; empty: $SSH_AUTH_SOCK
  std::map<std::string, std::string> key_files;  // host -> unencrypted private key file
  std::map<std::string, std::string> users;      // host -> upstream user (default: the guest's)

  // Upstream host keys. Empty: ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts.
  std::string known_hosts_file;

  // Where the proxy's own host key lives. Empty: $XDG_CONFIG_HOME/gondolin
  // (default ~/.config/gondolin).
  std::string host_key_dir;

  unsigned max_connections = 16;                        // concurrent guest SSH connections
  unsigned max_sessions = 8;                            // concurrent upstream sessions (one per exec)
  std::chrono::milliseconds handshake_timeout{20'000};  // guest and upstream, each
  std::chrono::milliseconds idle_timeout{600'000};      // no byte either way
};

}  // namespace gondolin
