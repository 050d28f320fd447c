#include "config/ssh_rules.h"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <set>

#include <libssh/libssh.h>

#include "config/host_name_rules.h"
#include "config/setting_error.h"
#include "gondolin/error.h"

namespace gondolin::config {
namespace {

// Empty if `host` is an acceptable DNS name, else why not.
std::string host_name_problem(std::string_view host) {
  if (auto why = dns_name_problem(host); !why.empty()) return why;
  if (ends_in_numeric_label(host))
    return "give a host name, not an address (the guest's SSH connections are matched by the name it dialled)";
  return {};
}

std::string normalized_or_throw(std::string_view flag, std::string_view text, std::string_view host) {
  std::string h = normalize_host_name(host);
  if (auto why = host_name_problem(h); !why.empty()) throw invalid_setting(flag, text, why);
  return h;
}

bool is_socket(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

void check_readable_file(std::string_view flag, const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    throw Error(ErrorKind::Usage, std::string(flag) + ": " + path + " is not a file");
  if (::access(path.c_str(), R_OK) != 0)
    throw Error(ErrorKind::Usage, std::string(flag) + ": " + path + " is not readable");
}

void check_private_key(const std::string& host, const std::string& path) {
  std::string flag = "--ssh-key " + host + "=" + path;
  check_readable_file(flag, path);
  ssh_key raw = nullptr;
  // No passphrase callback: an encrypted key fails here rather than prompting later.
  if (ssh_pki_import_privkey_file(path.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK || !raw)
    throw Error(
        ErrorKind::Usage,
        flag + ": not an unencrypted private key (for an encrypted key, add it to ssh-agent and use --ssh-agent)");
  ssh_key_free(raw);
}

}  // namespace

bool valid_remote_user(std::string_view user) {
  if (user.empty() || user.size() > 64 || user.front() == '-') return false;
  for (char c : user)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  return true;
}

SshAllowedHost parse_ssh_allowed_host(std::string_view text) {
  constexpr std::string_view flag = "--ssh-allow-host";
  if (text.find('[') != std::string_view::npos || text.find('@') != std::string_view::npos)
    throw invalid_setting(flag, text, "expected HOST[:PORT] with a host name");
  SshAllowedHost out;
  std::string_view host = text;
  if (auto colon = text.find(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    std::string_view port = text.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
      throw invalid_setting(flag, text, "PORT must be a number from 1 to 65535");
    out.port = static_cast<std::uint16_t>(value);
  }
  out.host = normalized_or_throw(flag, text, host);
  return out;
}

std::pair<std::string, std::string> parse_ssh_host_assignment(std::string_view flag, std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size())
    throw invalid_setting(flag, text, "expected HOST=VALUE");
  std::string host = normalized_or_throw(flag, text, text.substr(0, eq));
  return {host, std::string(text.substr(eq + 1))};
}

std::string effective_agent_socket(const SshOptions& options) {
  if (!options.use_agent) return {};
  if (!options.agent_socket.empty()) return options.agent_socket;
  const char* env = std::getenv("SSH_AUTH_SOCK");
  return env ? env : "";
}

const SshAllowedHost* find_allowed_host(const SshOptions& options, std::string_view host) {
  std::string h = normalize_host_name(host);
  for (const auto& a : options.allowed_hosts)
    if (a.host == h) return &a;
  return nullptr;
}

void validate_ssh_options(const SshOptions& o) {
  std::set<std::string> hosts;
  for (const auto& a : o.allowed_hosts) {
    std::string text = a.host + ":" + std::to_string(a.port);
    if (auto why = host_name_problem(a.host); !why.empty()) throw invalid_setting("--ssh-allow-host", text, why);
    if (a.host != normalize_host_name(a.host))
      throw invalid_setting("--ssh-allow-host", text, "host names must be lower case");
    if (a.port == 0) throw invalid_setting("--ssh-allow-host", text, "PORT must be a number from 1 to 65535");
    if (!hosts.insert(a.host).second) throw invalid_setting("--ssh-allow-host", a.host, "host listed twice");
  }
  for (const auto& [host, path] : o.key_files) {
    if (!hosts.count(host))
      throw Error(ErrorKind::Usage, "--ssh-key " + host + "=" + path + ": " + host + " is not an --ssh-allow-host");
    check_private_key(host, path);
  }
  for (const auto& [host, user] : o.users) {
    if (!hosts.count(host))
      throw Error(ErrorKind::Usage, "--ssh-user " + host + "=" + user + ": " + host + " is not an --ssh-allow-host");
    if (!valid_remote_user(user))
      throw Error(ErrorKind::Usage,
                  "--ssh-user " + host + "=" + user + ": user names are 1-64 of letters, digits, '.', '_', '-'");
  }
  if (o.use_agent) {
    std::string sock = effective_agent_socket(o);
    if (sock.empty()) throw Error(ErrorKind::Usage, "--ssh-agent: no socket given and SSH_AUTH_SOCK is not set");
    if (!is_socket(sock))
      throw Error(ErrorKind::Usage, "--ssh-agent: " + sock + " is not a socket (is ssh-agent running?)");
  }
  for (const auto& a : o.allowed_hosts)
    if (!o.use_agent && !o.key_files.count(a.host))
      throw Error(ErrorKind::Usage, "--ssh-allow-host " + a.host +
                                        " has no credentials: give --ssh-agent or --ssh-key " + a.host + "=PATH");
  if (!o.known_hosts_file.empty()) check_readable_file("--ssh-known-hosts", o.known_hosts_file);
  if (o.max_connections < 1 || o.max_connections > 1024)
    throw Error(ErrorKind::Usage, "SSH max_connections must be 1..1024");
  if (o.max_sessions < 1 || o.max_sessions > 1024) throw Error(ErrorKind::Usage, "SSH max_sessions must be 1..1024");
  if (o.handshake_timeout.count() <= 0 || o.idle_timeout.count() <= 0)
    throw Error(ErrorKind::Usage, "SSH timeouts must be positive");
}

}  // namespace gondolin::config
