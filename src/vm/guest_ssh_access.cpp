// GuestSshAccess (gondolin/guest_ssh.h): how a client reaches the guest.
#include "gondolin/guest_ssh.h"
#include "util/subprocess.h"

namespace gondolin {

std::vector<std::string> GuestSshAccess::ssh_argv() const {
  return {"ssh",
          "-i",
          identity_file,
          "-p",
          std::to_string(port),
          "-o",
          "UserKnownHostsFile=" + known_hosts_file,
          "-o",
          "IdentitiesOnly=yes",
          "-o",
          "StrictHostKeyChecking=yes",
          user + "@" + host};
}

std::string GuestSshAccess::command_line() const {
  auto plain = [](const std::string& a) {
    return !a.empty() &&
           a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./-_") ==
               std::string::npos;
  };
  std::string out;
  for (const auto& a : ssh_argv()) out += (out.empty() ? "" : " ") + (plain(a) ? a : shell_quote(a));
  return out;
}

std::string GuestSshAccess::config_snippet() const {
  return "Host " + alias + "\n  HostName " + host + "\n  Port " + std::to_string(port) + "\n  User " + user +
         "\n  IdentityFile " + identity_file + "\n  IdentitiesOnly yes\n  UserKnownHostsFile " + known_hosts_file +
         "\n  StrictHostKeyChecking yes\n";
}

}  // namespace gondolin
