// Egress proxy benchmark (before the network stack exists): a host client
// drives flows over socketpairs into EgressService, exactly as the stack will,
// to nginx on loopback. Prints ratios measured in this one run:
//   - HTTPS through the MITM vs plain HTTP through the proxy (goal >= 0.5x),
//     for keep-alive 1 KB requests/s and for a 200 MB download;
//   - the proxy vs the same client talking to nginx directly (context).
//
//   gondolin-bench-egress [SECONDS_PER_RUN]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "config/test_knobs.h"
#include "egress_harness.h"
#include "util/paths.h"
#include "util/subprocess.h"

using namespace gondolin;
using namespace gondolin::bench;
using namespace gondolin::egress::testing;

namespace {

constexpr std::uint64_t kBigFile = 200ull << 20;

std::uint16_t free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

int connect_tcp(std::uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect to nginx failed");
  int one = 1;
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

class Nginx {
 public:
  Nginx(const std::filesystem::path& dir, const TestPki& pki) : http_port(free_port()), https_port(free_port()) {
    auto www = dir / "www";
    std::filesystem::create_directories(www);
    std::filesystem::create_directories(dir / "tmp");
    std::ofstream(www / "1k") << std::string(1024, 'k');
    {
      std::ofstream big(www / "big");
      big.close();
      std::filesystem::resize_file(www / "big", kBigFile);
    }
    std::string d = dir.string();
    std::ofstream(dir / "nginx.conf") << "worker_processes 1; daemon off; master_process off; error_log " << d
                                      << "/error.log; pid " << d << "/nginx.pid;\n"
                                      << "events { worker_connections 1024; }\n"
                                      << "http { access_log off; client_body_temp_path " << d
                                      << "/tmp; proxy_temp_path " << d << "/tmp;\n"
                                      << "  fastcgi_temp_path " << d << "/tmp; uwsgi_temp_path " << d
                                      << "/tmp; scgi_temp_path " << d << "/tmp;\n"
                                      << "  keepalive_requests 10000000; keepalive_timeout 300s; sendfile on; "
                                         "default_type application/octet-stream;\n"
                                      << "  server { listen 127.0.0.1:" << http_port << "; root " << www.string()
                                      << "; }\n"
                                      << "  server { listen 127.0.0.1:" << https_port << " ssl; root " << www.string()
                                      << ";\n"
                                      << "    ssl_certificate " << pki.server_cert.string() << "; ssl_certificate_key "
                                      << pki.server_key.string() << "; }\n"
                                      << "}\n";
    auto nginx = paths::find_program("nginx");
    if (nginx.empty()) nginx = "/usr/sbin/nginx";
    SpawnSpec spec;
    spec.argv = {nginx.string(), "-p", d, "-c", (dir / "nginx.conf").string()};
    pid_ = spawn_process(spec);
    for (int i = 0; i < 100; ++i) {
      try {
        ::close(connect_tcp(http_port));
        ::close(connect_tcp(https_port));
        return;
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    throw std::runtime_error("nginx did not start (see " + d + "/error.log)");
  }
  ~Nginx() {
    ::kill(pid_, SIGTERM);
    wait_process(pid_);
  }
  std::uint16_t http_port, https_port;

 private:
  pid_t pid_ = -1;
};

// A blocking HTTP/1.1 client over a plain or TLS byte stream.
class Client {
 public:
  Client(UniqueFd fd, bool tls, const std::string& sni, SSL_CTX* ctx) : fd_(std::move(fd)) {
    if (!tls) return;
    ssl_ = SSL_new(ctx);
    SSL_set_fd(ssl_, fd_.get());
    SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(sni.c_str()));
    if (SSL_connect(ssl_) != 1) throw std::runtime_error("TLS connect failed");
  }
  ~Client() {
    if (ssl_) SSL_free(ssl_);
  }
  // Sends a GET and reads the whole response body; returns its size.
  std::uint64_t get(const std::string& request) {
    send(request);
    std::string head;
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) fill();
    head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    if (head.rfind("HTTP/1.1 200", 0) != 0) throw std::runtime_error("unexpected response: " + head.substr(0, 200));
    if (head.find("Transfer-Encoding: chunked") != std::string::npos) return chunked_body();
    auto cl = head.find("Content-Length: ");
    if (cl == std::string::npos) throw std::runtime_error("unexpected response: " + head.substr(0, 200));
    std::uint64_t total = std::stoull(head.substr(cl + 16));
    skip(total);
    return total;
  }

 private:
  void skip(std::uint64_t left) {
    while (left > 0) {
      if (buf_.empty()) fill();
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf_.size()));
      buf_.erase(0, n);
      left -= n;
    }
  }
  // A chunked body (what a guarded response becomes): its size.
  std::uint64_t chunked_body() {
    std::uint64_t total = 0;
    for (;;) {
      std::size_t eol;
      while ((eol = buf_.find("\r\n")) == std::string::npos) fill();
      std::uint64_t size = std::stoull(buf_.substr(0, eol), nullptr, 16);
      buf_.erase(0, eol + 2);
      skip(size + 2);  // the data and its CRLF (or the final empty line)
      if (size == 0) return total;
      total += size;
    }
  }

  void send(const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      int n = ssl_ ? SSL_write(ssl_, s.data() + off, static_cast<int>(s.size() - off))
                   : static_cast<int>(::send(fd_.get(), s.data() + off, s.size() - off, MSG_NOSIGNAL));
      if (n <= 0) throw std::runtime_error("write failed");
      off += static_cast<std::size_t>(n);
    }
  }
  void fill() {
    char tmp[256 * 1024];
    int n = ssl_ ? SSL_read(ssl_, tmp, sizeof tmp) : static_cast<int>(::read(fd_.get(), tmp, sizeof tmp));
    if (n <= 0) throw std::runtime_error("read failed");
    buf_.append(tmp, static_cast<std::size_t>(n));
  }
  UniqueFd fd_;
  SSL* ssl_ = nullptr;
  std::string buf_;
};

struct Setup {
  EgressHarness* proxy;  // null: straight to nginx
  bool tls;
  std::uint16_t port;
  SSL_CTX* ctx;
  std::unique_ptr<Client> connect() const {
    UniqueFd fd = proxy ? proxy->raw_flow(tls ? net::FlowKind::Tls : net::FlowKind::Http) : UniqueFd(connect_tcp(port));
    return std::make_unique<Client>(std::move(fd), tls, "bench.test", ctx);
  }
  std::string extra_header;  // e.g. a secret's placeholder
  std::string request(const std::string& path) const {
    return "GET " + path + " HTTP/1.1\r\nHost: bench.test:" + std::to_string(port) + "\r\nUser-Agent: bench\r\n" +
           extra_header + "\r\n";
  }
};

// Requests/s for 1 KB responses over `conns` keep-alive connections.
double requests_per_second(const Setup& s, int conns, double seconds) {
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < conns; ++i) clients.push_back(s.connect());
  std::atomic<std::uint64_t> total{0};
  std::atomic<bool> stop{false};
  const std::string req = s.request("/1k");
  std::vector<std::thread> threads;
  auto start = Clock::now();
  for (auto& c : clients)
    threads.emplace_back([&, client = c.get()] {
      while (!stop) {
        client->get(req);
        ++total;
      }
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  return static_cast<double>(total) / seconds_since(start);
}

double download_mb_per_second(const Setup& s) {
  auto c = s.connect();
  auto start = Clock::now();
  std::uint64_t n = c->get(s.request("/big"));
  return static_cast<double>(n) / (1 << 20) / seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  ::signal(SIGPIPE, SIG_IGN);
  auto dir = make_temp_dir("gondolin-bench-egress-");
  try {
    TestPki pki = TestPki::create(dir, {"bench.test"});
    Nginx nginx(dir / "nginx", pki);
    NetworkOptions o;
    o.allow_hosts = {"bench.test"};
    config::test_knobs(o).loopback_hosts = {"bench.test"};
    config::test_knobs(o).extra_upstream_ca_file = pki.ca_cert.string();
    EgressHarness plain_proxy(o), tls_proxy(o);
    plain_proxy.set_destination(nginx.http_port);
    tls_proxy.set_destination(nginx.https_port);

    // The "guest" verifies the MITM certificate like curl would.
    SSL_CTX* mitm_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(mitm_ctx, tls_proxy.mitm_ca_file().c_str(), nullptr);
    SSL_CTX_set_verify(mitm_ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX* direct_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(direct_ctx, pki.ca_cert.c_str(), nullptr);
    SSL_CTX_set_verify(direct_ctx, SSL_VERIFY_PEER, nullptr);

    Setup http_proxy{&plain_proxy, false, nginx.http_port, nullptr, {}};
    Setup https_proxy{&tls_proxy, true, nginx.https_port, mitm_ctx, {}};
    Setup http_direct{nullptr, false, nginx.http_port, nullptr, {}};
    Setup https_direct{nullptr, true, nginx.https_port, direct_ctx, {}};

    std::printf(
        "egress proxy benchmark: client over socketpairs -> EgressService -> nginx on loopback (%.1f s per run)\n\n",
        seconds);
    for (int conns : {1, 8}) {
      double hd = requests_per_second(http_direct, conns, seconds);
      double hp = requests_per_second(http_proxy, conns, seconds);
      double sd = requests_per_second(https_direct, conns, seconds);
      double sp = requests_per_second(https_proxy, conns, seconds);
      std::printf("1 KB keep-alive requests/s, %d connection%s:\n", conns, conns == 1 ? "" : "s");
      std::printf("  http  direct %8.0f   through proxy %8.0f   (%.2fx of direct)\n", hd, hp, hp / hd);
      std::printf("  https direct %8.0f   through MITM  %8.0f   (%.2fx of direct)\n", sd, sp, sp / sd);
      std::printf("  HTTPS through MITM vs HTTP through proxy: %.2fx (goal >= 0.5x)\n\n", sp / hp);
    }
    double dd = download_mb_per_second(http_direct);
    double dp = download_mb_per_second(http_proxy);
    double td = download_mb_per_second(https_direct);
    double tp = download_mb_per_second(https_proxy);
    std::printf("200 MB download, MB/s:\n");
    std::printf("  http  direct %8.0f   through proxy %8.0f   (%.2fx of direct)\n", dd, dp, dp / dd);
    std::printf("  https direct %8.0f   through MITM  %8.0f   (%.2fx of direct)\n", td, tp, tp / td);
    std::printf("  HTTPS through MITM vs HTTP through proxy: %.2fx (goal >= 0.5x)\n", tp / dp);

    // The same through a proxy with a secret in the request: the response
    // passes the reflection guard (scanned, re-framed chunked).
    NetworkOptions with_secret = o;
    with_secret.secrets = {HostSecret{"BENCH_TOKEN", {"bench.test"}, "bench-secret-value-0123456789", {}, {}, {}, {}}};
    EgressHarness guarded_proxy(with_secret);
    guarded_proxy.set_destination(nginx.http_port);
    Setup http_guarded{&guarded_proxy, false, nginx.http_port, nullptr,
                       "Authorization: Bearer " + guarded_proxy.placeholder("BENCH_TOKEN") + "\r\n"};
    double gp = requests_per_second(http_guarded, 1, seconds);
    double hp1 = requests_per_second(http_proxy, 1, seconds);
    // Alternating, median of three: single downloads swing by a third here.
    std::vector<double> g3, p3;
    for (int i = 0; i < 3; ++i) {
      g3.push_back(download_mb_per_second(http_guarded));
      p3.push_back(download_mb_per_second(http_proxy));
    }
    std::sort(g3.begin(), g3.end());
    std::sort(p3.begin(), p3.end());
    double gd = g3[1], dp2 = p3[1];
    std::printf("\nHTTP through proxy with a secret (reflection guard) vs without:\n");
    std::printf("  1 KB requests/s, 1 connection %8.0f vs %8.0f   (%.2fx)\n", gp, hp1, gp / hp1);
    std::printf("  200 MB download, MB/s (median of 3) %8.0f vs %8.0f   (%.2fx)\n", gd, dp2, gd / dp2);
    SSL_CTX_free(mitm_ctx);
    SSL_CTX_free(direct_ctx);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gondolin-bench-egress: %s\n", e.what());
    std::filesystem::remove_all(dir);
    return 1;
  }
  std::filesystem::remove_all(dir);
  return 0;
}
