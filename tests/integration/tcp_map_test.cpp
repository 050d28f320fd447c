// Mapped TCP and ingress with real guests: a guest Redis client reaches a
// loopback redis-server through --tcp-map, a server that speaks first is
// heard at once, unmapped names and ports stay refused, every connection is
// in the egress log; a host client reaches a guest http.server through
// --listen, which binds loopback only and fails clearly on a busy port; idle
// connections of both kinds are closed after tcp_idle_timeout.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "gondolin/vm.h"
#include "test_support.h"
#include "util/files.h"
#include "util/paths.h"

using namespace gondolin;
using gondolin::testing::host_sh;
using gondolin::testing::run_gondolin;

namespace {

// A loopback port nobody listens on right now.
std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// A loopback TCP listener; returns its fd (the caller closes it).
int listen_loopback(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Speaks first ("220 banner"), then answers what it read, once the client
// half-closes, with "got:<bytes>" and closes. Serves connections until stopped.
class BannerServer {
 public:
  BannerServer() : port_(free_port()), fd_(listen_loopback(port_)) {
    thread_ = std::thread([this] { serve(); });
  }
  ~BannerServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      const std::string banner = "220 banner\n";
      (void)!::write(c, banner.data(), banner.size());
      std::string got;
      char buf[4096];
      for (;;) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 20000) <= 0) break;
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
      }
      const std::string reply = "got:" + got;
      (void)!::write(c, reply.data(), reply.size());
      ::close(c);
    }
  }
  std::uint16_t port_;
  int fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// redis-server on a loopback port in a temporary directory (Debian's redis-server).
class RedisServer {
 public:
  RedisServer() : port_(free_port()) {
    if (paths::find_program("redis-server").empty()) return;
    const auto dir = tmp_.path().string();
    host_sh("redis-server --port " + std::to_string(port_) + " --bind 127.0.0.1 --dir " + dir +
            " --save '' --appendonly no --daemonize yes --pidfile " + dir + "/redis.pid --logfile " + dir +
            "/redis.log");
    for (int i = 0; i < 100; ++i) {
      if (cli("PING") == "PONG\n") {
        running_ = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~RedisServer() {
    if (running_) cli("SHUTDOWN NOSAVE");
  }
  bool running() const { return running_; }
  std::uint16_t port() const { return port_; }
  std::string cli(const std::string& command) {
    try {
      return host_sh("redis-cli -h 127.0.0.1 -p " + std::to_string(port_) + " " + command + " 2>&1");
    } catch (const std::exception&) {
      return "";
    }
  }

 private:
  gondolin::testing::TempDir tmp_;
  std::uint16_t port_;
  bool running_ = false;
};

std::string sh(Vm& vm, const std::string& script) {
  auto r = vm.exec(script);
  return r.stdout_data + r.stderr_data;
}

std::vector<nlohmann::json> read_log(const std::filesystem::path& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// `curl` on the host, retried while the guest server is starting.
std::string host_curl_until_ok(std::uint16_t port, std::chrono::seconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      return host_sh("curl -sS -m 10 http://127.0.0.1:" + std::to_string(port) + "/ 2>&1");
    } catch (const std::exception& e) {
      last = e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  return "never answered: " + last;
}

// Addresses (hex, as in /proc/net/tcp) listening on `port`.
std::vector<std::string> listening_addresses(std::uint16_t port) {
  std::vector<std::string> out;
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      const auto colon = local.rfind(':');
      if (state != "0A" || std::stoul(local.substr(colon + 1), nullptr, 16) != port) continue;
      out.push_back(local.substr(0, colon));
    }
  }
  return out;
}

}  // namespace

class TcpMapGuest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = std::make_unique<gondolin::testing::TempDir>();
    redis_ = std::make_unique<RedisServer>();
    banner_ = std::make_unique<BannerServer>();
    ingress_port_ = free_port();
    VmOptions o;
    o.network.egress_log_path = (tmp_->path() / "egress.jsonl").string();
    o.network.tcp_maps = {TcpMap{"redis.test", 0, "127.0.0.1", redis_->port()},
                          TcpMap{"banner.test", 2525, "localhost", banner_->port()}};
    o.network.ingress = {Ingress{"127.0.0.1", ingress_port_, 8000}};
    vm_ = std::make_unique<Vm>(Vm::create(o));
  }
  static void TearDownTestSuite() {
    vm_.reset();
    banner_.reset();
    redis_.reset();
    tmp_.reset();
  }
  static std::filesystem::path log_path() { return tmp_->path() / "egress.jsonl"; }

  static std::unique_ptr<gondolin::testing::TempDir> tmp_;
  static std::unique_ptr<RedisServer> redis_;
  static std::unique_ptr<BannerServer> banner_;
  static std::uint16_t ingress_port_;
  static std::unique_ptr<Vm> vm_;
};
std::unique_ptr<gondolin::testing::TempDir> TcpMapGuest::tmp_;
std::unique_ptr<RedisServer> TcpMapGuest::redis_;
std::unique_ptr<BannerServer> TcpMapGuest::banner_;
std::uint16_t TcpMapGuest::ingress_port_ = 0;
std::unique_ptr<Vm> TcpMapGuest::vm_;

TEST_F(TcpMapGuest, MappedNamesResolveToTheirOwnAddresses) {
  std::string out = sh(*vm_, "getent hosts redis.test banner.test | cut -d' ' -f1");
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
  const std::string first = out.substr(0, out.find('\n'));
  const std::string second = out.substr(out.find('\n') + 1, out.size() - out.find('\n') - 2);
  EXPECT_EQ(first.rfind("198.1", 0), 0u) << out;
  EXPECT_EQ(second.rfind("198.1", 0), 0u) << out;
  EXPECT_NE(first, second);
}

TEST_F(TcpMapGuest, GuestRedisClientTalksToLoopbackRedis) {
  if (!redis_->running()) GTEST_SKIP() << "redis-server is not installed (apt-get install redis-server)";
  // A real RESP client (redis-cli is not in the image): PING, SET, GET.
  std::string out = sh(*vm_, R"(python3 - <<'EOF'
import socket
s = socket.create_connection(("redis.test", 6379), timeout=20)
f = s.makefile("rb")
def cmd(*args):
    s.sendall(("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args)).encode())
    line = f.readline()
    if line.startswith(b"$") and line != b"$-1\r\n":
        line += f.readline()
    return line
print(cmd("PING"))
print(cmd("SET", "gondolin-key", "from-the-guest"))
print(cmd("GET", "gondolin-key"))
EOF)");
  EXPECT_EQ(out, "b'+PONG\\r\\n'\nb'+OK\\r\\n'\nb'$14\\r\\nfrom-the-guest\\r\\n'\n");
  // The write really reached the host's Redis.
  EXPECT_EQ(redis_->cli("GET gondolin-key"), "from-the-guest\n");
}

TEST_F(TcpMapGuest, ServerThatSpeaksFirstIsHeardAtOnceAndHalfCloseWorks) {
  std::string out = sh(*vm_, R"(python3 - <<'EOF'
import socket, time
t = time.time()
s = socket.create_connection(("banner.test", 2525), timeout=20)
banner = s.recv(100)
waited = time.time() - t
s.sendall(b"hello")
s.shutdown(socket.SHUT_WR)
rest = b""
while True:
    d = s.recv(100)
    if not d:
        break
    rest += d
print(banner, rest, "fast" if waited < 0.4 else "slow %.2f" % waited)
EOF)");
  EXPECT_EQ(out, "b'220 banner\\n' b'got:hello' fast\n");
}

TEST_F(TcpMapGuest, UnmappedNamesAndPortsStayRefused) {
  // banner.test is mapped on port 2525 only; other.test not at all.
  for (const char* target : {"('banner.test', 2526)", "('other.test', 6379)"}) {
    std::string out = sh(*vm_, std::string(R"(python3 - <<'EOF'
import socket
s = socket.create_connection()") + target +
                                   R"(, timeout=10)
s.sendall(b"PING\r\n")
try:
    print("data", s.recv(100))
except ConnectionResetError:
    print("reset")
EOF)");
    EXPECT_EQ(out, "reset\n") << target;
  }
}

TEST_F(TcpMapGuest, MappedFlowsAreLoggedWithBytesEachWay) {
  sh(*vm_, R"(python3 -c '
import socket
s = socket.create_connection(("banner.test", 2525), timeout=20)
s.recv(100); s.sendall(b"12345"); s.shutdown(socket.SHUT_WR)
while s.recv(100): pass
try:
    r = socket.create_connection(("other.test", 7), timeout=10)
    r.sendall(b"x"); r.recv(10)
except OSError:
    pass
')");
  // The close line is written when both directions are done; give it a moment.
  nlohmann::json open, close;
  for (int i = 0; i < 50 && close.is_null(); ++i) {
    for (const auto& j : read_log(log_path())) {
      if (j.value("kind", "") != "tcp" || j.value("host", "") != "banner.test" || j.value("port", 0) != 2525) continue;
      if (j.value("event", "") == "open") open = j;
      if (j.value("event", "") == "close" && j.value("bytes_from_guest", 0) == 5) close = j;
    }
    if (close.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(open.is_null());
  ASSERT_FALSE(close.is_null());
  EXPECT_EQ(open["decision"], "allow");
  EXPECT_EQ(open["rule"], "tcp-map banner.test:2525=localhost:" + std::to_string(banner_->port()));
  EXPECT_NE(open["upstream"].get<std::string>().find(":" + std::to_string(banner_->port())), std::string::npos);
  EXPECT_EQ(close["bytes_to_guest"], std::string("220 banner\ngot:12345").size());
  // And the refused ones are logged as denials.
  bool refused_logged = false;
  for (const auto& j : read_log(log_path()))
    if (j.value("host", "") == "other.test" && j.value("decision", "") == "deny") refused_logged = true;
  EXPECT_TRUE(refused_logged);
}

TEST_F(TcpMapGuest, HostClientReachesGuestHttpServerOnLoopbackOnly) {
  Process server = vm_->spawn(Command::shell("cd /etc && exec python3 -m http.server 8000 2>/dev/null"));
  std::string page = host_curl_until_ok(ingress_port_, std::chrono::seconds(60));
  EXPECT_NE(page.find("Directory listing for /"), std::string::npos) << page;
  EXPECT_NE(page.find("hostname"), std::string::npos) << page;  // /etc/hostname, served from the guest
  // Bound to 127.0.0.1 only (0100007F in /proc/net/tcp), nowhere else.
  EXPECT_EQ(listening_addresses(ingress_port_), std::vector<std::string>{"0100007F"});
  server.send_signal(SIGTERM);
  server.wait();
  bool logged = false;
  for (int i = 0; i < 50 && !logged; ++i) {
    for (const auto& j : read_log(log_path()))
      if (j.value("kind", "") == "ingress" && j.value("event", "") == "close" && j.value("port", 0) == 8000 &&
          j.value("bytes_from_guest", 0) > 100 && j.value("peer", "").rfind("127.0.0.1:", 0) == 0)
        logged = true;
    if (!logged) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(logged);
}

TEST(TcpMapCli, ListenForwardsToTheGuestAndSaysSoForTcpMap) {
  const std::uint16_t port = free_port();
  auto run = std::async(std::launch::async, [port] {
    // Serves exactly one request, then the command (and the VM) ends.
    return run_gondolin({"exec", "--listen", std::to_string(port) + ":8080", "--tcp-map", "db.test=127.0.0.1:1", "--",
                         "python3", "-c",
                         "import http.server as h, os; os.chdir('/etc'); "
                         "h.HTTPServer(('', 8080), h.SimpleHTTPRequestHandler).handle_request()"});
  });
  std::string page = host_curl_until_ok(port, std::chrono::seconds(120));
  auto r = run.get();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(page.find("Directory listing for /"), std::string::npos) << page;
  EXPECT_NE(r.err.find("--tcp-map turns on --dns-synthetic-host-mapping per-host"), std::string::npos) << r.err;
}

TEST(TcpMapCli, BusyPortAndBadSpecsFailBeforeBooting) {
  const std::uint16_t port = free_port();
  int busy = listen_loopback(port);
  ASSERT_GE(busy, 0);
  auto r = run_gondolin({"exec", "--listen", std::to_string(port), "--", "true"});
  ::close(busy);
  EXPECT_NE(r.exit_code, 0);
  const std::string p = std::to_string(port);
  EXPECT_NE(r.err.find("--listen 127.0.0.1:" + p + ":" + p + ": cannot listen on 127.0.0.1:" + p +
                       ": Address already in use"),
            std::string::npos)
      << r.err;
  auto bad_map = run_gondolin({"exec", "--tcp-map", "redis", "--", "true"});
  EXPECT_EQ(bad_map.exit_code, 125);
  EXPECT_NE(bad_map.err.find("invalid --tcp-map 'redis': expected GUEST_HOST[:PORT]=UPSTREAM_HOST:PORT"),
            std::string::npos)
      << bad_map.err;
  auto bad_listen = run_gondolin({"bash", "--listen", "example.com:80"});
  EXPECT_EQ(bad_listen.exit_code, 125);
  EXPECT_NE(bad_listen.err.find("invalid --listen 'example.com:80'"), std::string::npos) << bad_listen.err;
}

// The idle timeout and the policy file's "listen", through the real binary: a
// mapped flow and an ingress connection that go silent are both closed after
// tcp_idle_timeout, on both sides, with a close line saying why.
TEST(TcpMapCli, IdleMappedAndIngressConnectionsAreClosed) {
  gondolin::testing::TempDir tmp;
  BannerServer banner;  // says its banner, then waits up to 20 s for more
  const std::uint16_t port = free_port();
  const auto policy = tmp.path() / "policy.json";
  const auto log = tmp.path() / "egress.jsonl";
  std::ofstream(policy) << R"({"listen": [")" << port << R"(:8080"], "tcp_idle_timeout": 1, "egress_log": ")"
                        << log.string() << R"(", "tcp_map": ["banner.test:2525=127.0.0.1:)" << banner.port()
                        << R"("]})";
  auto run = std::async(std::launch::async, [&] {
    return run_gondolin({"exec", "--policy", policy.string(), "--", "python3", "-c", R"(
import socket, time
def wait_closed(s):
    try:
        while s.recv(100): pass
    except ConnectionResetError:
        pass
# Ingress first, accepted at once: a connection left waiting in the backlog
# would itself go idle.
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("", 8080))
srv.listen(4)
c, _ = srv.accept()
c.sendall(b"hi")
c.settimeout(30)
wait_closed(c)
print("ingress closed", flush=True)
s = socket.create_connection(("banner.test", 2525), timeout=30)
s.recv(100)
t = time.time()
wait_closed(s)
print("mapped closed after %.1f s" % (time.time() - t))
)"});
  });
  // The host client: retried until the guest server answers "hi", then silent.
  double ingress_idle_s = -1;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
       ingress_idle_s < 0 && std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(std::chrono::milliseconds(300))) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    char buf[16];
    pollfd p{fd, POLLIN, 0};
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::poll(&p, 1, 20000) == 1 &&
        ::read(fd, buf, sizeof buf) == 2) {
      const auto t = std::chrono::steady_clock::now();
      if (::poll(&p, 1, 30000) == 1 && ::read(fd, buf, sizeof buf) <= 0)
        ingress_idle_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    }
    ::close(fd);
  }
  auto r = run.get();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_GE(ingress_idle_s, 0.9);
  EXPECT_LT(ingress_idle_s, 10);
  EXPECT_NE(r.out.find("ingress closed"), std::string::npos) << r.out;
  const auto at = r.out.find("mapped closed after ");
  ASSERT_NE(at, std::string::npos) << r.out << r.err;
  const double mapped_idle_s = std::stod(r.out.substr(at + 20));
  EXPECT_GE(mapped_idle_s, 0.9) << r.out;
  EXPECT_LT(mapped_idle_s, 10) << r.out;
  bool mapped_logged = false, ingress_logged = false;
  for (const auto& j : read_log(log)) {
    if (j.value("event", "") != "close" || j.value("reason", "") != "idle timeout: no bytes either way for 1 s")
      continue;
    if (j.value("kind", "") == "tcp" && j.value("host", "") == "banner.test") mapped_logged = true;
    if (j.value("kind", "") == "ingress" && j.value("bytes_from_guest", 0) == 2) ingress_logged = true;
  }
  EXPECT_TRUE(mapped_logged) << "no idle close line for the mapped flow";
  EXPECT_TRUE(ingress_logged) << "no idle close line for the ingress connection";
}

// Last in the suite: it denies a mapped name on the shared VM, then lifts it.
TEST_F(TcpMapGuest, DenyingAMappedNameClosesItsConnectionsAndRefusesNewOnes) {
  if (!redis_->running()) GTEST_SKIP() << "redis-server is not installed (apt-get install redis-server)";
  Process p = vm_->spawn(Command::argv({"python3", "-c", R"(import os, socket, time
s = socket.create_connection(("redis.test", 6379), timeout=20)
s.sendall(b"PING\r\n"); print(s.recv(64), flush=True)
while not os.path.exists("/tmp/deny-go"): time.sleep(0.05)
try:
    s.sendall(b"PING\r\n"); r = s.recv(64); print(r if r else "closed", flush=True)
except OSError:
    print("closed", flush=True)
try:
    t = socket.create_connection(("redis.test", 6379), timeout=20); t.sendall(b"PING\r\n")
    r = t.recv(64); print(r if r else "refused", flush=True)
except OSError:
    print("refused", flush=True)
)"}));
  std::string out;
  while (out.find('\n') == std::string::npos)
    if (auto c = p.read())
      out += c->data;
    else
      break;
  EXPECT_EQ(out, "b'+PONG\\r\\n'\n");
  vm_->change_policy(PolicyChange::deny_host("redis.test"));
  vm_->write_file("/tmp/deny-go", "");
  while (auto c = p.read()) out += c->data;
  EXPECT_EQ(out, "b'+PONG\\r\\n'\nclosed\nrefused\n") << out;
  vm_->change_policy(PolicyChange::allow_host("redis.test"));  // lifts the denial for anything after this
  std::string log = read_file(log_path());
  EXPECT_NE(log.find(R"("rule":"deny-host")"), std::string::npos) << log;
}
