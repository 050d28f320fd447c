#include "config/ssh_rules.h"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <set>
#include <tuple>

#include <libssh/libssh.h>

#include "config/host_name_rules.h"
#include "config/host_secret_rules.h"
#include "config/setting_error.h"
#include "config/ssh_git_rules.h"
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

std::uint16_t port_or_throw(std::string_view flag, std::string_view text, std::string_view port) {
  std::uint16_t value = 0;
  if (!parse_port(port, value)) throw invalid_setting(flag, text, "PORT must be a number from 1 to 65535");
  return value;
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

// Loads the key as the proxy will; never prompts (an encrypted key without
// its passphrase fails here rather than later).
void check_private_key(const std::string& host, const std::string& path, const std::string* passphrase) {
  std::string flag = "--ssh-key " + host + "=" + path;
  check_readable_file(flag, path);
  ssh_key raw = nullptr;
  if (ssh_pki_import_privkey_file(path.c_str(), passphrase ? passphrase->c_str() : nullptr, nullptr, nullptr, &raw) !=
          SSH_OK ||
      !raw)
    throw Error(ErrorKind::Usage,
                flag + (passphrase ? ": not a private key this passphrase opens"
                                   : ": not an unencrypted private key (for an encrypted key add "
                                     ",passphrase-env=VAR, or load it into ssh-agent and use --ssh-agent)"));
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

SshAllowedHost parse_ssh_allowed_host(std::string_view text, std::string_view flag) {
  if (text.find('[') != std::string_view::npos || text.find('@') != std::string_view::npos)
    throw invalid_setting(flag, text, "expected HOST[:PORT][,upstream-port=N] with a host name");
  SshAllowedHost out;
  std::string_view main = text;
  std::optional<std::uint16_t> upstream;
  if (auto comma = text.find(','); comma != std::string_view::npos) {
    main = text.substr(0, comma);
    std::string_view option = text.substr(comma + 1);
    constexpr std::string_view kUpstream = "upstream-port=";
    if (!option.starts_with(kUpstream))
      throw invalid_setting(flag, text, "the only option after ',' is upstream-port=N");
    upstream = port_or_throw(flag, text, option.substr(kUpstream.size()));
  }
  std::string_view host = main;
  if (auto colon = main.find(':'); colon != std::string_view::npos) {
    host = main.substr(0, colon);
    out.guest_port = port_or_throw(flag, text, main.substr(colon + 1));
  }
  out.port = upstream.value_or(out.guest_port);
  out.host = normalized_or_throw(flag, text, host);
  return out;
}

std::string format_ssh_allowed_host(const SshAllowedHost& h) {
  std::string out = h.host;
  if (h.guest_port != 22) out += ":" + std::to_string(h.guest_port);
  if (h.port != h.guest_port) out += ",upstream-port=" + std::to_string(h.port);
  return out;
}

std::pair<std::string, std::string> parse_ssh_host_assignment(std::string_view flag, std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size())
    throw invalid_setting(flag, text, "expected HOST=VALUE");
  std::string host = normalized_or_throw(flag, text, text.substr(0, eq));
  return {host, std::string(text.substr(eq + 1))};
}

SshKeySetting parse_ssh_key(std::string_view text, std::string_view flag) {
  constexpr std::string_view kMarker = ",passphrase-env=";
  SshKeySetting out;
  std::string_view assignment = text;
  if (auto at = text.rfind(kMarker); at != std::string_view::npos) {
    assignment = text.substr(0, at);
    std::string var(text.substr(at + kMarker.size()));
    if (!valid_env_name(var)) throw invalid_setting(flag, text, "passphrase-env needs an environment variable name");
    const char* value = std::getenv(var.c_str());
    if (!value || !*value) throw invalid_setting(flag, text, "$" + var + " (the key's passphrase) is not set");
    out.passphrase = value;
  }
  std::tie(out.host, out.path) = parse_ssh_host_assignment(flag, assignment);
  return out;
}

std::string parse_ssh_git_repo(std::string_view text, std::string_view flag) {
  std::string host;
  std::string_view path = text;
  if (auto colon = text.find(':'); colon != std::string_view::npos) {
    host = normalized_or_throw(flag, text, text.substr(0, colon)) + ":";
    path = text.substr(colon + 1);
  }
  std::string normalized = normalize_git_repo_path(path);
  if (auto why = git_repo_pattern_problem(normalized); !why.empty()) throw invalid_setting(flag, text, why);
  return host + normalized;
}

std::string effective_agent_socket(const SshOptions& options) {
  if (!options.use_agent) return {};
  if (!options.agent_socket.empty()) return options.agent_socket;
  const char* env = std::getenv("SSH_AUTH_SOCK");
  return env ? env : "";
}

const SshAllowedHost* find_allowed_host(const SshOptions& options, std::string_view host,
                                        std::optional<std::uint16_t> guest_port) {
  std::string h = normalize_host_name(host);
  for (const auto& a : options.allowed_hosts)
    if (a.host == h && (!guest_port || a.guest_port == *guest_port)) return &a;
  return nullptr;
}

namespace {

// Distinct (host, guest port) pairs with valid names and ports; returns the hosts.
std::set<std::string> validate_allowed_hosts(const SshOptions& o) {
  std::set<std::string> hosts;
  std::set<std::pair<std::string, std::uint16_t>> pairs;
  for (const auto& a : o.allowed_hosts) {
    std::string text = format_ssh_allowed_host(a);
    if (auto why = host_name_problem(a.host); !why.empty()) throw invalid_setting("--ssh-allow-host", text, why);
    if (a.host != normalize_host_name(a.host))
      throw invalid_setting("--ssh-allow-host", text, "host names must be lower case");
    if (a.port == 0 || a.guest_port == 0)
      throw invalid_setting("--ssh-allow-host", text, "PORT must be a number from 1 to 65535");
    if (!pairs.emplace(a.host, a.guest_port).second)
      throw invalid_setting("--ssh-allow-host", text, "host and port listed twice");
    hosts.insert(a.host);
  }
  return hosts;
}

void validate_credentials(const SshOptions& o, const std::set<std::string>& hosts) {
  for (const auto& [host, path] : o.key_files) {
    if (!hosts.count(host))
      throw Error(ErrorKind::Usage, "--ssh-key " + host + "=" + path + ": " + host + " is not an --ssh-allow-host");
    auto pass = o.key_passphrases.find(host);
    check_private_key(host, path, pass == o.key_passphrases.end() ? nullptr : &pass->second);
  }
  for (const auto& [host, _] : o.key_passphrases)
    if (!o.key_files.count(host))
      throw Error(ErrorKind::Usage, "SSH key passphrase for " + host + " without a key file");
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
  for (const auto& host : hosts)
    if (!o.use_agent && !o.key_files.count(host))
      throw Error(ErrorKind::Usage,
                  "--ssh-allow-host " + host + " has no credentials: give --ssh-agent or --ssh-key " + host + "=PATH");
  for (const auto& f : o.known_hosts_files) check_readable_file("--ssh-known-hosts", f);
}

void validate_git_policy(const SshGitPolicy& git, const std::set<std::string>& hosts) {
  for (const auto& repo : git.repos) {
    std::string normalized = parse_ssh_git_repo(repo);
    if (normalized != repo)
      throw invalid_setting("--ssh-git-repo", repo, "write it as " + normalized + " (normalized form)");
    if (auto colon = repo.find(':'); colon != std::string::npos && !hosts.count(repo.substr(0, colon)))
      throw invalid_setting("--ssh-git-repo", repo, repo.substr(0, colon) + " is not an --ssh-allow-host");
  }
}

}  // namespace

void validate_ssh_options(const SshOptions& o) {
  const std::set<std::string> hosts = validate_allowed_hosts(o);
  validate_credentials(o, hosts);
  validate_git_policy(o.git, hosts);
  if (o.max_connections < 1 || o.max_connections > 1024)
    throw Error(ErrorKind::Usage, "SSH max_connections must be 1..1024");
  if (o.max_sessions < 1 || o.max_sessions > 1024) throw Error(ErrorKind::Usage, "SSH max_sessions must be 1..1024");
  if (o.handshake_timeout.count() <= 0 || o.idle_timeout.count() <= 0)
    throw Error(ErrorKind::Usage, "SSH timeouts must be positive");
}

}  // namespace gondolin::config
