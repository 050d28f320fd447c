#include "egress_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/post.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <sstream>
#include <stdexcept>

#include "util/subprocess.h"

namespace gondolin::egress::testing {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void must(const CommandOutput& r, const std::string& what) {
  if (r.exit_code != 0) throw std::runtime_error(what + " failed: " + r.err);
}

}  // namespace

std::filesystem::path make_temp_dir(const std::string& prefix) {
  std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

CommandOutput run(const std::vector<std::string>& argv) {
  auto dir = make_temp_dir("gondolin-run-");
  UniqueFd out(::open((dir / "out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  UniqueFd err(::open((dir / "err").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  SpawnSpec spec;
  spec.argv = argv;
  spec.stdout_fd = out.get();
  spec.stderr_fd = err.get();
  pid_t pid = spawn_process(spec);
  int status = wait_process(pid);
  CommandOutput r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(dir / "out");
  r.err = slurp(dir / "err");
  std::filesystem::remove_all(dir);
  return r;
}

CommandOutput run_shell(const std::string& script) { return run({"/bin/sh", "-c", script}); }

TestPki TestPki::create(const std::filesystem::path& dir, const std::vector<std::string>& names) {
  TestPki p;
  p.dir = dir;
  p.ca_cert = dir / "test-ca.crt";
  p.server_cert = dir / "server.crt";
  p.server_key = dir / "server.key";
  p.untrusted_cert = dir / "untrusted.crt";
  p.untrusted_key = dir / "untrusted.key";
  std::string san;
  for (const auto& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
  std::string d = dir.string();
  must(run_shell(
           "cd '" + d +
           "' && "
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj '/CN=gondolin test CA' "
           "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
           "-keyout test-ca.key -out test-ca.crt 2>/dev/null && "
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=" +
           names.front() +
           "' "
           "-keyout server.key -out server.csr 2>/dev/null && "
           "printf 'subjectAltName=" +
           san +
           "\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf && "
           "openssl x509 -req -in server.csr -CA test-ca.crt -CAkey test-ca.key -CAcreateserial -days 2 "
           "-extfile ext.cnf -out server.crt 2>/dev/null && "
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj '/CN=" +
           names.front() +
           "' "
           "-addext subjectAltName=" +
           san + " -keyout untrusted.key -out untrusted.crt 2>/dev/null"),
       "making the test PKI");
  return p;
}

PythonUpstream::PythonUpstream(const std::filesystem::path& cert, const std::filesystem::path& key,
                               const std::filesystem::path& static_root) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  UniqueFd rd(fds[0]), wr(fds[1]);
  SpawnSpec spec;
  spec.argv = {"/usr/bin/python3", GONDOLIN_UPSTREAM_SERVER};
  if (!cert.empty()) {
    spec.argv.insert(spec.argv.end(), {"--cert", cert.string(), "--key", key.string()});
  }
  if (!static_root.empty()) spec.argv.insert(spec.argv.end(), {"--root", static_root.string()});
  spec.stdout_fd = wr.get();
  pid_ = spawn_process(spec);
  wr = UniqueFd();
  std::string line = read_until(rd.get(), "\n", 10000);
  if (line.rfind("PORT ", 0) != 0) throw std::runtime_error("upstream server did not start: " + line);
  port_ = static_cast<std::uint16_t>(std::stoi(line.substr(5)));
}

PythonUpstream::~PythonUpstream() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait_process(pid_);
  }
}

EgressHarness::EgressHarness(NetworkOptions options) : dir_(make_temp_dir("gondolin-egress-")) {
  socket_path_ = dir_ / "guest.sock";
  log_path_ = dir_ / "egress.log";
  options.mitm_ca_dir = (dir_ / "mitm").string();
  if (options.egress_log_path.empty()) options.egress_log_path = log_path_.string();
  service_ = std::make_unique<EgressService>(io_, options);
  acceptor_ = std::make_unique<boost::asio::local::stream_protocol::acceptor>(
      io_, boost::asio::local::stream_protocol::endpoint(socket_path_.string()));
  accept_next();
  thread_ = std::thread([this] { io_.run(); });
}

EgressHarness::~EgressHarness() {
  boost::asio::post(io_, [this] {
    boost::system::error_code ec;
    acceptor_->close(ec);
  });
  io_.stop();
  thread_.join();
  acceptor_.reset();
  service_.reset();
  std::filesystem::remove_all(dir_);
}

void EgressHarness::set_destination(std::uint16_t port, std::optional<std::string> hostname) {
  std::promise<void> done;
  boost::asio::post(io_, [&] {
    dest_port_ = port;
    dest_host_ = std::move(hostname);
    done.set_value();
  });
  done.get_future().wait();
}

void EgressHarness::accept_next() {
  acceptor_->async_accept([this](const boost::system::error_code& ec, boost::asio::local::stream_protocol::socket s) {
    if (ec) return;
    // Classify like the stack does: by the first bytes the client sends.
    auto sock = std::make_shared<boost::asio::local::stream_protocol::socket>(std::move(s));
    auto buf = std::make_shared<std::array<char, 16>>();
    sock->async_read_some(
        boost::asio::buffer(*buf), [this, sock, buf](const boost::system::error_code& rec, std::size_t n) {
          if (rec) return;
          std::string prefix(buf->data(), n);
          net::FlowKind kind = net::FlowKind::Other;
          if (static_cast<unsigned char>(prefix[0]) == 0x16)
            kind = net::FlowKind::Tls;
          else if (prefix.rfind("SSH-", 0) == 0)
            kind = net::FlowKind::Ssh;
          else if (std::isupper(static_cast<unsigned char>(prefix[0])))
            kind = net::FlowKind::Http;
          net::GuestFlow flow{{next_flow_++, {10, 0, 2, 15}, 40000, {10, 0, 2, 100}, dest_port_, dest_host_},
                              kind,
                              std::move(prefix),
                              std::move(*sock)};
          dispatch(std::move(flow));
        });
    accept_next();
  });
}

void EgressHarness::dispatch(net::GuestFlow flow) {
  switch (flow.kind) {
    case net::FlowKind::Http: service_->on_http(std::move(flow)); break;
    case net::FlowKind::Tls: service_->on_tls(std::move(flow)); break;
    case net::FlowKind::Ssh: service_->on_ssh(std::move(flow)); break;
    case net::FlowKind::Other: service_->on_other(std::move(flow)); break;
  }
}

UniqueFd EgressHarness::raw_flow(net::FlowKind kind, std::string prefix) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw std::runtime_error("socketpair failed");
  UniqueFd ours(sv[0]);
  int theirs = sv[1];
  std::promise<void> done;
  boost::asio::post(io_, [&, theirs] {
    boost::asio::local::stream_protocol::socket s(io_);
    s.assign(boost::asio::local::stream_protocol(), theirs);
    net::GuestFlow flow{{next_flow_++, {10, 0, 2, 15}, 40000, {10, 0, 2, 100}, dest_port_, dest_host_},
                        kind,
                        std::move(prefix),
                        std::move(s)};
    dispatch(std::move(flow));
    done.set_value();
  });
  done.get_future().wait();
  return ours;
}

std::vector<nlohmann::json> EgressHarness::log_lines() const {
  std::vector<nlohmann::json> out;
  std::istringstream in(log_text());
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

std::string EgressHarness::log_text() const { return slurp(log_path_); }

std::string EgressHarness::placeholder(const std::string& secret) const {
  for (const auto& [k, v] : service_->guest_env())
    if (k == secret) return v;
  return {};
}

CommandOutput EgressHarness::curl(const std::vector<std::string>& curl_args) {
  std::vector<std::string> argv = {
      "curl", "-sS", "--unix-socket", socket_path_.string(), "--cacert", mitm_ca_file().string(), "--max-time", "120"};
  argv.insert(argv.end(), curl_args.begin(), curl_args.end());
  return run(argv);
}

std::string read_until(int fd, const std::string& needle, int timeout_ms) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (got.find(needle) == std::string::npos) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    char buf[65536];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

std::string send_and_read_all(int fd, const std::string& data, int timeout_ms) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
  return read_until(fd, std::string("\0never\0", 7), timeout_ms);
}

long current_rss_kib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

}  // namespace gondolin::egress::testing
