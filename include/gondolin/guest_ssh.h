// Host -> guest SSH: reach a running VM with ssh, scp, rsync -e ssh or an
// editor's remote mode (Vm::enable_ssh, Session::enable_ssh, `gondolin ssh
// ID`, `gondolin bash --ssh`).
//
// Nothing listens in the guest. gondolin listens on 127.0.0.1 (an ephemeral
// port) and runs, for each connection it accepts, the guest's own
// `/usr/sbin/sshd -i` (inetd mode) through the control channel, with the
// connection as its stdin and stdout. The key pair the client logs in with
// and the guest's host key are made per session, kept only in the session's
// directory (0700, files 0600), and replaced on each enable after a restart;
// the client's known_hosts file pins the guest's host key, so no prompt and
// no trust-on-first-use. The image needs openssh-server (debian-base has it;
// its sshd is never started as a service).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gondolin {

struct GuestSshAccess {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string user = "root";
  std::string identity_file;     // the client's private key
  std::string known_hosts_file;  // "[127.0.0.1]:PORT <guest host key>"
  std::string alias;             // the Host name config_snippet() defines: "gondolin-<session>"

  // ssh -i IDENTITY -p PORT -o UserKnownHostsFile=... -o IdentitiesOnly=yes ... USER@HOST
  std::vector<std::string> ssh_argv() const;
  // The same, quoted for a shell.
  std::string command_line() const;
  // An ~/.ssh/config block: after it, `ssh ALIAS`, `scp f ALIAS:`, `rsync -e
  // ssh d ALIAS:` work.
  std::string config_snippet() const;
};

}  // namespace gondolin
