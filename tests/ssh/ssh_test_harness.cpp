#include "ssh_test_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "util/files.h"
#include "util/paths.h"
#include "util/subprocess.h"
#include "util/unique_fd.h"

extern char** environ;

namespace gondolin::ssh_test {
namespace {

std::uint16_t free_loopback_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) throw std::runtime_error("bind failed");
  socklen_t len = sizeof sin;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sin), &len);
  return ntohs(sin.sin_port);
}

bool port_accepts(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0;
}

void stop_process(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  int status = 0;
  for (int i = 0; i < 50; ++i) {
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      pid = -1;
      return;
    }
    ::usleep(20'000);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  pid = -1;
}

}  // namespace

ProgramResult run_program(const std::vector<std::string>& argv, const ProgramOptions& options) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) throw std::runtime_error("pipe");
  UniqueFd in_r(in[0]), in_w(in[1]), out_r(out[0]), out_w(out[1]), err_r(err[0]), err_w(err[1]);
  SpawnSpec spec;
  spec.argv = argv;
  spec.stdin_fd = in_r.get();
  spec.stdout_fd = out_w.get();
  spec.stderr_fd = err_w.get();
  spec.cwd = options.cwd;
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    if (!options.env.count(key)) env.push_back(kv);
  }
  for (const auto& [k, v] : options.env) env.push_back(k + "=" + v);
  spec.env = env;
  pid_t pid = spawn_process(spec);
  in_r.reset();
  out_w.reset();
  err_w.reset();

  ProgramResult r;
  std::size_t written = 0;
  if (options.stdin_data.empty()) in_w.reset();
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  bool killed = false;
  while (out_r || err_r) {
    std::vector<pollfd> fds;
    if (out_r) fds.push_back({out_r.get(), POLLIN, 0});
    if (err_r) fds.push_back({err_r.get(), POLLIN, 0});
    if (in_w) fds.push_back({in_w.get(), POLLOUT, 0});
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0 && !killed) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    ::poll(fds.data(), fds.size(), left > 0 ? static_cast<int>(std::min<long long>(left, 1000)) : 1000);
    for (auto& p : fds) {
      if (!p.revents) continue;
      if (in_w && p.fd == in_w.get()) {
        ssize_t n = ::write(in_w.get(), options.stdin_data.data() + written, options.stdin_data.size() - written);
        if (n > 0) written += static_cast<std::size_t>(n);
        if (n < 0 || written == options.stdin_data.size()) in_w.reset();
        continue;
      }
      char buf[65536];
      ssize_t n = ::read(p.fd, buf, sizeof buf);
      if (n <= 0) {
        if (out_r && p.fd == out_r.get())
          out_r.reset();
        else if (err_r && p.fd == err_r.get())
          err_r.reset();
        continue;
      }
      (p.fd == out_r.get() ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
    }
  }
  int status = wait_process(pid);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string run_ok(const std::vector<std::string>& argv, const ProgramOptions& options) {
  ProgramResult r = run_program(argv, options);
  if (r.exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error(cmd + "failed (" + std::to_string(r.exit_code) + "): " + r.out + r.err);
  }
  return r.out;
}

TempDir::TempDir() : path_(paths::make_private_temp_dir("gondolin-ssh-test")) {}
TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void make_key(const fs::path& path) {
  run_ok({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", path});
}

std::string public_key_line(const fs::path& private_key) {
  std::istringstream in(run_ok({"ssh-keygen", "-y", "-f", private_key}));
  std::string type, blob;
  in >> type >> blob;
  return type + " " + blob;
}

OpenSshServer::OpenSshServer(const fs::path& dir) : dir_(dir) {
  fs::create_directories(dir_);
  fs::create_directories("/run/sshd");  // sshd's privilege separation directory
  make_key(dir_ / "ssh_host_ed25519_key");
  user_key_ = dir_ / "user_key";
  make_key(user_key_);
  write_file_atomic(dir_ / "authorized_keys", public_key_line(user_key_) + "\n");
  port_ = free_loopback_port();
  std::ostringstream cfg;
  cfg << "Port " << port_ << "\n"
      << "ListenAddress 127.0.0.1\n"
      << "HostKey " << (dir_ / "ssh_host_ed25519_key").string() << "\n"
      << "PidFile " << (dir_ / "sshd.pid").string() << "\n"
      << "AuthorizedKeysFile " << (dir_ / "authorized_keys").string() << "\n"
      << "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
      << "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nAllowTcpForwarding yes\n"
      << "AllowAgentForwarding yes\nX11Forwarding no\nAcceptEnv GIT_PROTOCOL\nSubsystem sftp internal-sftp\n"
      << "LogLevel VERBOSE\n";
  write_file_atomic(dir_ / "sshd_config", cfg.str());
  UniqueFd log(::open((dir_ / "sshd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  SpawnSpec spec;
  spec.argv = {"/usr/sbin/sshd", "-D", "-e", "-f", (dir_ / "sshd_config").string()};
  spec.stderr_fd = log.get();
  spec.stdout_fd = log.get();
  pid_ = spawn_process(spec);
  for (int i = 0; i < 250 && !port_accepts(port_); ++i) ::usleep(20'000);
  if (!port_accepts(port_)) throw std::runtime_error("sshd did not start: " + this->log());
}

OpenSshServer::~OpenSshServer() { stop_process(pid_); }

std::string OpenSshServer::host_key_line() const { return public_key_line(dir_ / "ssh_host_ed25519_key"); }

std::string OpenSshServer::log() const { return read_file_if_exists(dir_ / "sshd.log").value_or(""); }

int OpenSshServer::accepted_logins() const {
  std::string l = log();
  int n = 0;
  for (std::size_t pos = 0; (pos = l.find("Accepted publickey", pos)) != std::string::npos; ++pos) ++n;
  return n;
}

SshAgent::SshAgent(const fs::path& dir) {
  socket_ = dir / "agent.sock";
  SpawnSpec spec;
  spec.argv = {"ssh-agent", "-D", "-a", socket_.string()};
  UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  spec.stdout_fd = null.get();
  pid_ = spawn_process(spec);
  for (int i = 0; i < 250 && !fs::exists(socket_); ++i) ::usleep(20'000);
  if (!fs::exists(socket_)) throw std::runtime_error("ssh-agent did not start");
}

SshAgent::~SshAgent() { stop_process(pid_); }

void SshAgent::add(const fs::path& key) {
  ProgramOptions o;
  o.env["SSH_AUTH_SOCK"] = socket_.string();
  run_ok({"ssh-add", "-q", key.string()}, o);
}

void RecordingAudit::record(const egress::SshAuditEvent& event) {
  std::lock_guard lock(mutex_);
  events_.push_back(event);
}

std::vector<egress::SshAuditEvent> RecordingAudit::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

GuestPort::GuestPort(test_support::IoThread& io, egress::SshProxy& proxy, std::string hostname, std::uint16_t dest_port)
    : io_(io), proxy_(proxy), hostname_(std::move(hostname)), dest_port_(dest_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 || ::listen(listen_fd_, 16) != 0)
    throw std::runtime_error("GuestPort: cannot listen");
  socklen_t len = sizeof sin;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sin), &len);
  port_ = ntohs(sin.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

GuestPort::~GuestPort() {
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> relays;
  {
    std::lock_guard lock(mutex_);
    relays.swap(relays_);
  }
  for (auto& t : relays) t.join();
}

std::string GuestPort::sent_to_guest() const {
  std::lock_guard lock(mutex_);
  return sent_;
}

void GuestPort::accept_loop() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return;
    }
    // Like the stack's classifier: the first few bytes are read before the
    // flow is handed over, and travel as the prefix.
    std::string prefix;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10'000) == 1) {
      char buf[8];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) prefix.assign(buf, static_cast<std::size_t>(n));
    }
    int sv[2];
    ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    net::GuestFlowInfo info;
    {
      std::lock_guard lock(mutex_);
      info.flow_id = next_flow_++;
    }
    info.dest_ip = {10, 0, 2, 100};
    info.dest_port = dest_port_;
    if (!hostname_.empty()) info.hostname = hostname_;
    int proxy_end = sv[1];
    io_.run([&] {
      boost::asio::local::stream_protocol::socket socket(io_.io());
      socket.assign(boost::asio::local::stream_protocol(), proxy_end);
      proxy_.handle(net::GuestFlow{info, net::FlowKind::Ssh, prefix, std::move(socket)});
      return 0;
    });
    std::lock_guard lock(mutex_);
    relays_.emplace_back([this, fd, unix_fd = sv[0]] { relay(fd, unix_fd); });
  }
}

void GuestPort::relay(int tcp_fd, int unix_fd) {
  UniqueFd tcp(tcp_fd), ux(unix_fd);
  bool tcp_open = true, ux_open = true;
  char buf[65536];
  while (tcp_open || ux_open) {
    pollfd fds[2] = {{tcp_open ? tcp.get() : -1, POLLIN, 0}, {ux_open ? ux.get() : -1, POLLIN, 0}};
    if (::poll(fds, 2, 120'000) <= 0) return;
    if (fds[0].revents) {
      ssize_t n = ::read(tcp.get(), buf, sizeof buf);
      if (n <= 0 || ::send(ux.get(), buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
        tcp_open = false;
        ::shutdown(ux.get(), SHUT_WR);
      }
    }
    if (fds[1].revents) {
      ssize_t n = ::read(ux.get(), buf, sizeof buf);
      if (n > 0) {
        std::lock_guard lock(mutex_);
        if (sent_.size() < (8u << 20)) sent_.append(buf, static_cast<std::size_t>(n));
      }
      if (n <= 0 || ::send(tcp.get(), buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
        ux_open = false;
        ::shutdown(tcp.get(), SHUT_WR);
      }
    }
  }
}

fs::path write_guest_ssh_config(const fs::path& dir, const std::map<std::string, std::uint16_t>& host_ports,
                                const std::vector<std::string>& known_hosts_lines) {
  std::string kh;
  for (const auto& l : known_hosts_lines) kh += l + "\n";
  write_file_atomic(dir / "guest_known_hosts", kh);
  std::ostringstream cfg;
  for (const auto& [host, port] : host_ports)
    cfg << "Host " << host << "\n  HostName 127.0.0.1\n  Port " << port << "\n  HostKeyAlias " << host << "\n";
  cfg << "Host *\n"
      << "  User git\n"
      << "  UserKnownHostsFile " << (dir / "guest_known_hosts").string() << "\n"
      << "  GlobalKnownHostsFile /dev/null\n"
      << "  StrictHostKeyChecking yes\n"
      << "  BatchMode yes\n"
      << "  PubkeyAuthentication no\n  PasswordAuthentication no\n  KbdInteractiveAuthentication no\n"
      << "  IdentityAgent none\n"
      << "  ConnectTimeout 20\n";
  write_file_atomic(dir / "guest_ssh_config", cfg.str());
  return dir / "guest_ssh_config";
}

}  // namespace gondolin::ssh_test
