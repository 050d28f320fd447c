#include "egress/ssh/ssh_upstream.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "util/logging.h"

namespace gondolin::egress {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxKnownHostsBytes = 16 * 1024 * 1024;

SshUpstreamFailure error(std::string message) { return {false, "gondolin: " + std::move(message)}; }
SshUpstreamFailure denied(std::string message) { return {true, "gondolin: " + std::move(message)}; }

std::string home_dir() {
  if (const char* h = std::getenv("HOME"); h && *h) return h;
  if (passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir) return pw->pw_dir;
  return "/";
}

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

// Connects within `timeout` to one of the host's addresses; the descriptor is
// left blocking, as libssh expects.
std::variant<UniqueFd, SshUpstreamFailure> connect_tcp(const SshUpstreamTarget& t, SocketAbortSwitch& abort) {
  std::vector<sockaddr_storage> addrs;
  std::vector<socklen_t> lens;
  if (t.connect_to_loopback) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(t.port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sockaddr_storage ss{};
    std::memcpy(&ss, &sin, sizeof sin);
    addrs.push_back(ss);
    lens.push_back(sizeof sin);
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(t.host.c_str(), std::to_string(t.port).c_str(), &hints, &res);
    if (rc != 0) return error("cannot resolve " + t.host + ": " + ::gai_strerror(rc));
    for (addrinfo* ai = res; ai; ai = ai->ai_next) {
      sockaddr_storage ss{};
      std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
      addrs.push_back(ss);
      lens.push_back(ai->ai_addrlen);
    }
    ::freeaddrinfo(res);
  }
  std::string last_error = "no addresses";
  auto deadline = Clock::now() + t.timeout;
  for (std::size_t i = 0; i < addrs.size(); ++i) {
    UniqueFd fd(::socket(addrs[i].ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
      last_error = std::strerror(errno);
      continue;
    }
    auto watch = abort.watch(fd.get());
    int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addrs[i]), lens[i]);
    if (rc != 0 && errno != EINPROGRESS) {
      last_error = std::strerror(errno);
      continue;
    }
    if (rc != 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pollfd p{fd.get(), POLLOUT, 0};
      int pr = left > 0 ? ::poll(&p, 1, static_cast<int>(left)) : 0;
      if (pr <= 0) {
        last_error = "timed out";
        continue;
      }
      int soerr = 0;
      socklen_t len = sizeof soerr;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
      if (soerr != 0) {
        last_error = std::strerror(soerr);
        continue;
      }
    }
    if (abort.aborted()) return error("SSH proxy is shutting down");
    int flags = ::fcntl(fd.get(), F_GETFL);
    ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // libssh writes with blocking sends: a peer that stops reading must not hold us forever.
    timeval tv = to_timeval(t.stall_timeout);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
  }
  return error("cannot connect to " + t.display() + ": " + last_error);
}

// libssh skips @revoked lines; OpenSSH never accepts a key marked so. Any
// such line with this key refuses it, whatever host it names.
bool key_marked_revoked(const std::string& file, const std::string& key_base64) {
  std::ifstream in(file);
  if (!in) return false;
  std::string line;
  std::size_t total = 0;
  while (std::getline(in, line)) {
    total += line.size() + 1;
    if (total > kMaxKnownHostsBytes) break;
    std::istringstream fields(line);
    std::string marker, hosts, type, blob;
    if (!(fields >> marker >> hosts >> type >> blob)) continue;
    if (marker == "@revoked" && blob == key_base64) return true;
  }
  return false;
}

// The known_hosts files to consult, in order.
std::vector<std::string> known_hosts_files(const SshUpstreamTarget& t) {
  if (!t.known_hosts_files.empty()) return t.known_hosts_files;
  return {home_dir() + "/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"};
}

// What libssh says of the server's key against one file.
enum ssh_known_hosts_e known_in(ssh_session s, const std::string& file) {
  if (ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, file.c_str()) != 0 ||
      ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null") != 0)
    return SSH_KNOWN_HOSTS_ERROR;
  return ssh_session_is_known_server(s);
}

// Trusted if any of `files` lists the key for the host; refused if any marks
// it @revoked, or (listed nowhere) any has another key for the host.
std::optional<SshUpstreamFailure> verify_host_key(ssh_session s, const SshUpstreamTarget& t,
                                                  const std::vector<std::string>& files) {
  ssh_key raw = nullptr;
  if (ssh_get_server_publickey(s, &raw) != SSH_OK || !raw)
    return error("no host key from " + t.display() + ": " + ssh_error_line(s));
  SshKeyPtr key(raw);
  std::string fingerprint = ssh_key_fingerprint(key.get());
  std::string listed;
  for (const auto& f : files) listed += (listed.empty() ? "" : ", ") + f;
  std::string name = t.port == 22 ? t.host : "[" + t.host + "]:" + std::to_string(t.port);

  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key.get(), &b64) == SSH_OK && b64) {
    SshCharPtr owned(b64);
    for (const auto& f : files)
      if (key_marked_revoked(f, b64))
        return denied("the SSH host key of " + t.display() + " (" + fingerprint +
                      ") is marked @revoked in known_hosts; nothing was sent");
  }
  bool changed = false, failed = false;
  for (const auto& f : files) {
    switch (known_in(s, f)) {
      case SSH_KNOWN_HOSTS_OK: return std::nullopt;
      case SSH_KNOWN_HOSTS_CHANGED:
      case SSH_KNOWN_HOSTS_OTHER: changed = true; break;
      case SSH_KNOWN_HOSTS_UNKNOWN:
      case SSH_KNOWN_HOSTS_NOT_FOUND: break;
      case SSH_KNOWN_HOSTS_ERROR:
      default: failed = true; break;
    }
  }
  if (changed)
    return denied("the SSH host key of " + t.display() + " (" + fingerprint + ") does not match known_hosts (" +
                  listed + "); possible man-in-the-middle, nothing was sent");
  if (failed) return error("cannot check the SSH host key of " + t.display() + ": " + ssh_error_line(s));
  return denied("host " + name + " is not in known_hosts (" + listed + "); its key is " + fingerprint +
                ": verify it, then add it on the host (ssh-keyscan" +
                (t.port == 22 ? "" : " -p " + std::to_string(t.port)) + " " + t.host + "); nothing was sent");
}

std::optional<SshUpstreamFailure> authenticate(ssh_session s, const SshUpstreamTarget& t) {
  if (!t.key_file.empty()) {
    ssh_key raw = nullptr;
    const char* passphrase = t.key_passphrase ? t.key_passphrase->c_str() : nullptr;
    if (ssh_pki_import_privkey_file(t.key_file.c_str(), passphrase, nullptr, nullptr, &raw) != SSH_OK || !raw)
      return error("cannot load the SSH key " + t.key_file + " configured for " + t.host);
    SshKeyPtr key(raw);
    int rc = ssh_userauth_publickey(s, nullptr, key.get());
    if (rc == SSH_AUTH_SUCCESS) return std::nullopt;
    if (rc == SSH_AUTH_ERROR) return error("authentication with " + t.display() + " failed: " + ssh_error_line(s));
    return error(t.display() + " refused the key " + t.key_file + " for user " + t.user);
  }
  int rc = ssh_userauth_agent(s, nullptr);
  if (rc == SSH_AUTH_SUCCESS) return std::nullopt;
  if (rc == SSH_AUTH_ERROR)
    return error("authentication with " + t.display() + " via ssh-agent failed: " + ssh_error_line(s));
  return error(t.display() + " accepted none of the ssh-agent's keys for user " + t.user);
}

}  // namespace

UpstreamExec::StartResult UpstreamExec::start(const SshUpstreamTarget& t, const std::string& command,
                                              const std::optional<std::string>& git_protocol,
                                              SocketAbortSwitch& abort) {
  auto connected = connect_tcp(t, abort);
  if (auto* f = std::get_if<SshUpstreamFailure>(&connected)) return *f;

  std::unique_ptr<UpstreamExec> up(new UpstreamExec());
  up->fd_ = std::move(std::get<UniqueFd>(connected));
  up->watch_ = abort.watch(up->fd_.get());
  up->session_.reset(ssh_new());
  if (!up->session_) return error("out of memory");
  ssh_session s = up->session_.get();

  // libssh orders the host key algorithms it offers by the keys the first
  // two files hold for the host; verify_host_key consults every file.
  const std::vector<std::string> files = known_hosts_files(t);
  const std::string first_file = files.front(), second_file = files.size() > 1 ? files[1] : "/dev/null";
  long timeout_s = std::max<long>(1, static_cast<long>((t.timeout.count() + 999) / 1000));
  int fd = up->fd_.get();
  unsigned port = t.port;
  int no = 0;
  int strict = 1;
  int verbosity = SSH_LOG_NOLOG;
  bool ok =
      ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity) == 0 &&
      ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no) == 0 &&  // the user's ~/.ssh/config must not change policy
      ssh_options_set(s, SSH_OPTIONS_HOST, t.host.c_str()) == 0 && ssh_options_set(s, SSH_OPTIONS_PORT, &port) == 0 &&
      ssh_options_set(s, SSH_OPTIONS_USER, t.user.c_str()) == 0 &&
      ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, first_file.c_str()) == 0 &&
      ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, second_file.c_str()) == 0 &&
      ssh_options_set(s, SSH_OPTIONS_STRICTHOSTKEYCHECK, &strict) == 0 &&
      ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout_s) == 0 && ssh_options_set(s, SSH_OPTIONS_FD, &fd) == 0;
  if (ok && t.key_file.empty() && !t.agent_socket.empty())
    ok = ssh_options_set(s, SSH_OPTIONS_IDENTITY_AGENT, t.agent_socket.c_str()) == 0;
  if (!ok) return error("cannot configure the SSH session for " + t.display() + ": " + ssh_error_line(s));

  if (ssh_connect(s) != SSH_OK) return error("SSH handshake with " + t.display() + " failed: " + ssh_error_line(s));
  if (auto f = verify_host_key(s, t, files)) return *f;
  if (auto f = authenticate(s, t)) return *f;

  up->channel_ = ssh_channel_new(s);
  if (!up->channel_ || ssh_channel_open_session(up->channel_) != SSH_OK)
    return error(t.display() + " refused a session channel: " + ssh_error_line(s));
  ssh_callbacks_init(&up->callbacks_);
  up->callbacks_.userdata = up.get();
  up->callbacks_.channel_exit_status_function = &UpstreamExec::on_exit_status;
  up->callbacks_.channel_exit_signal_function = &UpstreamExec::on_exit_signal;
  ssh_set_channel_callbacks(up->channel_, &up->callbacks_);
  // Optional: a server that refuses it still speaks protocol v0.
  if (git_protocol && ssh_channel_request_env(up->channel_, "GIT_PROTOCOL", git_protocol->c_str()) != SSH_OK)
    log().debug("ssh: {} refused GIT_PROTOCOL", t.display());
  if (ssh_channel_request_exec(up->channel_, command.c_str()) != SSH_OK)
    return error(t.display() + " refused to run the command: " + ssh_error_line(s));
  ssh_set_blocking(s, 0);
  return up;
}

UpstreamExec::~UpstreamExec() {
  if (session_) {
    if (ssh_is_connected(session_.get())) ssh_disconnect(session_.get());
    session_.reset();
  }
}

void UpstreamExec::on_exit_status(ssh_session, ssh_channel, int status, void* self) {
  static_cast<UpstreamExec*>(self)->exit_status_ = status;
}

void UpstreamExec::on_exit_signal(ssh_session, ssh_channel, const char* signal, int core, const char* errmsg,
                                  const char*, void* self) {
  UpstreamExitSignal sig;
  sig.name = signal ? std::string(signal).substr(0, 32) : "KILL";
  sig.core_dumped = core != 0;
  sig.message = errmsg ? std::string(errmsg).substr(0, 256) : "";
  static_cast<UpstreamExec*>(self)->exit_signal_ = std::move(sig);
}

}  // namespace gondolin::egress
