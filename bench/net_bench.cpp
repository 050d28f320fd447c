// Guest network throughput and boot cost, as ratios against baselines
// measured in the same run:
//
//   download  guest `curl` of an N MB file (default 200) over plain HTTP from
//             nginx on host loopback: through gondolin's stack (a test egress
//             handler that relays each flow to nginx, no HTTP processing) vs
//             through QEMU's own user networking (-netdev user, libslirp) in
//             an otherwise identical VM. Median of RUNS, alternating.
//   upload    the guest writes N/2 MB to a TCP socket (bash /dev/tcp), read
//             and discarded on the host; same two paths.
//   proxied   the same download through the real egress path (HTTP proxy
//             with allowlist, parsing and re-sending), the path users get.
//             Raw TCP upload is refused there (as it should be), so that
//             path reports downloads only.
//   boot      Vm::create with the network vs --no-network (median of BOOTS).
//
// Both gondolin's default MTU (16384) and 1500 (QEMU's) are measured, and for
// each path the host CPU time (QEMU plus, for gondolin, this process, which
// runs the stack) per 100 MB moved: a number the machine's other load
// disturbs less than throughput.
//
// Usage: gondolin-bench-net [MB] [RUNS] [BOOTS]
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "bench_util.h"
#include "config/test_knobs.h"
#include "gondolin/error.h"
#include "gondolin/vm.h"
#include "net/guest_flow.h"
#include "util/paths.h"
#include "util/subprocess.h"
#include "util/unique_fd.h"
#include "vm/vm_internals.h"

using namespace gondolin;
using namespace gondolin::bench;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

std::uint16_t free_port() {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// nginx on 127.0.0.1 serving one file of `mb` MiB from a private directory.
class Nginx {
 public:
  explicit Nginx(std::size_t mb) : dir_(paths::make_private_temp_dir("gondolin-bench-nginx")), port_(free_port()) {
    { std::ofstream blob(dir_ / "blob"); }
    std::filesystem::resize_file(dir_ / "blob", mb << 20);
    std::ofstream conf(dir_ / "nginx.conf");
    conf << "daemon off; worker_processes 1; pid " << (dir_ / "nginx.pid").string() << ";\n"
         << "error_log " << (dir_ / "error.log").string() << ";\n"
         << "events { worker_connections 64; }\n"
         << "http { access_log off; sendfile on; client_body_temp_path " << dir_.string() << ";\n"
         << "  proxy_temp_path " << dir_.string() << "; fastcgi_temp_path " << dir_.string() << ";\n"
         << "  uwsgi_temp_path " << dir_.string() << "; scgi_temp_path " << dir_.string() << ";\n"
         << "  server { listen 127.0.0.1:" << port_ << "; root " << dir_.string() << "; } }\n";
    conf.close();
    SpawnSpec spec;
    spec.argv = {"nginx", "-c", (dir_ / "nginx.conf").string(), "-p", dir_.string()};
    pid_ = spawn_process(spec);
    for (int i = 0; i < 100; ++i) {  // until it listens
      UniqueFd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(port_);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw Error(ErrorKind::Io, "nginx did not start (see " + (dir_ / "error.log").string() + ")");
  }
  ~Nginx() {
    ::kill(pid_, SIGTERM);
    wait_process(pid_);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::uint16_t port() const { return port_; }

 private:
  std::filesystem::path dir_;
  std::uint16_t port_;
  pid_t pid_ = -1;
};

// A host TCP sink on 127.0.0.1 for the -netdev user upload.
class Sink {
 public:
  Sink() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_.get(), 4);
    socklen_t len = sizeof a;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!c) return;
        static char buf[1 << 16];
        while (::read(c.get(), buf, sizeof buf) > 0) {}
      }
    });
  }
  ~Sink() {
    ::shutdown(fd_.get(), SHUT_RDWR);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  UniqueFd fd_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

// One direction of a relay between two stream sockets.
template <typename From, typename To>
void pump(std::shared_ptr<From> from, std::shared_ptr<To> to, std::shared_ptr<std::vector<char>> buf) {
  from->async_read_some(asio::buffer(*buf), [from, to, buf](const boost::system::error_code& ec, std::size_t n) {
    if (ec) {
      boost::system::error_code ignored;
      to->shutdown(asio::socket_base::shutdown_send, ignored);
      return;
    }
    asio::async_write(*to, asio::buffer(buf->data(), n),
                      [from, to, buf](const boost::system::error_code& wec, std::size_t) {
                        if (!wec) pump(from, to, buf);
                      });
  });
}

// HTTP flows are relayed to nginx; everything else is read and discarded.
class BenchEgress : public net::EgressHandlers {
 public:
  BenchEgress(asio::io_context& io, std::uint16_t port) : io_(io), port_(port) {}
  void on_http(net::GuestFlow f) override {
    auto guest = std::make_shared<asio::local::stream_protocol::socket>(std::move(f.socket));
    auto upstream = std::make_shared<tcp::socket>(io_);
    auto prefix = std::make_shared<std::string>(std::move(f.prefix));
    upstream->async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), port_),
                            [guest, upstream, prefix](const boost::system::error_code& ec) {
                              if (ec) return;
                              asio::async_write(
                                  *upstream, asio::buffer(*prefix),
                                  [guest, upstream, prefix](const boost::system::error_code& wec, std::size_t) {
                                    if (wec) return;
                                    pump(guest, upstream, std::make_shared<std::vector<char>>(1 << 16));
                                    pump(upstream, guest, std::make_shared<std::vector<char>>(1 << 16));
                                  });
                            });
  }
  void on_tls(net::GuestFlow f) override { f.socket.close(); }
  void on_ssh(net::GuestFlow f) override { f.socket.close(); }
  void on_other(net::GuestFlow f) override {
    auto s = std::make_shared<asio::local::stream_protocol::socket>(std::move(f.socket));
    drain(s, std::make_shared<std::vector<char>>(1 << 16));
  }

 private:
  static void drain(std::shared_ptr<asio::local::stream_protocol::socket> s, std::shared_ptr<std::vector<char>> buf) {
    s->async_read_some(asio::buffer(*buf), [s, buf](const boost::system::error_code& ec, std::size_t) {
      if (!ec) drain(s, buf);
    });
  }
  asio::io_context& io_;
  std::uint16_t port_;
};

struct Path {
  std::string name;
  std::unique_ptr<Vm> vm;
  std::string http_host;    // what the guest's curl dials
  std::string upload_host;  // address:port for /dev/tcp
  bool stack_in_this_process = false;
  std::vector<double> down, up, down_cpu, up_cpu;  // MB/s; CPU s per 100 MB
};

double process_cpu_seconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double self_cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// Runs `f` and returns the host CPU seconds the path spent on it.
template <typename F>
double cpu_of(const Path& p, F&& f) {
  const int qemu = p.vm->info().qemu_pid;
  const double q0 = process_cpu_seconds(qemu), s0 = self_cpu_seconds();
  f();
  return process_cpu_seconds(qemu) - q0 + (p.stack_in_this_process ? self_cpu_seconds() - s0 : 0);
}

double download_mb_s(Vm& vm, const std::string& url, std::size_t mb) {
  auto r = vm.exec("curl -sS -o /dev/null -w '%{size_download} %{time_total}' " + url);
  double size = 0, secs = 0;
  if (r.exit_code != 0 || std::sscanf(r.stdout_data.c_str(), "%lf %lf", &size, &secs) != 2 || secs <= 0)
    throw Error(ErrorKind::Guest, "download failed: " + r.stdout_data + r.stderr_data);
  if (static_cast<std::size_t>(size) != (mb << 20)) throw Error(ErrorKind::Guest, "short download: " + r.stdout_data);
  return size / secs / 1e6;
}

double upload_mb_s(Vm& vm, const std::string& host_port, std::size_t mb) {
  auto r = vm.exec(Command::argv({"bash", "-c",
                                  "s=$(date +%s.%N); head -c " + std::to_string(mb) + "M /dev/zero > /dev/tcp/" +
                                      host_port + " && e=$(date +%s.%N) && echo $s $e"}));
  double s = 0, e = 0;
  if (r.exit_code != 0 || std::sscanf(r.stdout_data.c_str(), "%lf %lf", &s, &e) != 2 || e <= s)
    throw Error(ErrorKind::Guest, "upload failed: " + r.stdout_data + r.stderr_data);
  return static_cast<double>(mb << 20) / (e - s) / 1e6;
}

// Each path's medians, then gondolin's against QEMU's user networking;
// closes the VMs.
void report(std::vector<Path>& paths) {
  for (auto& p : paths) {
    if (p.up.empty()) {
      std::printf("  %-19s download %6.1f MB/s (%s), %.2f CPU s/100MB\n", p.name.c_str(), median(p.down),
                  list(p.down).c_str(), median(p.down_cpu));
      p.vm.reset();
      continue;
    }
    std::printf("  %-19s download %6.1f MB/s (%s), %.2f CPU s/100MB   upload %6.1f MB/s (%s), %.2f CPU s/100MB\n",
                p.name.c_str(), median(p.down), list(p.down).c_str(), median(p.down_cpu), median(p.up),
                list(p.up).c_str(), median(p.up_cpu));
    p.vm.reset();
  }
  const Path& base = paths[2];
  for (std::size_t i = 0; i < 2; ++i)
    std::printf("  %s / qemu user: download %.2fx, upload %.2fx; CPU per MB %.2fx / %.2fx   (goal >= 1.0x)\n",
                paths[i].name.c_str(), median(paths[i].down) / median(base.down), median(paths[i].up) / median(base.up),
                median(paths[i].down_cpu) / median(base.down_cpu), median(paths[i].up_cpu) / median(base.up_cpu));
  std::printf("  %s / qemu user: download %.2fx; CPU per MB %.2fx   (goal >= 1.0x)\n", paths[3].name.c_str(),
              median(paths[3].down) / median(base.down), median(paths[3].down_cpu) / median(base.down_cpu));
}

// What the network costs a cold kernel boot and the agent's start.
void measure_boot_cost(int boots) {
  std::vector<double> with_net, without_net, with_init, without_init;
  for (int i = 0; i < boots; ++i) {
    for (bool net : {true, false}) {
      VmOptions o;
      o.network.enabled = net;
      o.register_session = false;
      o.cold = true;  // what the network costs a kernel boot
      Vm vm = Vm::create(o);
      (net ? with_net : without_net).push_back(vm.info().boot_seconds);
      (net ? with_init : without_init).push_back(vm.info().agent_init_seconds);
    }
  }
  std::printf("  boot with network    %.2f s (%s), agent init %.3f s\n", median(with_net), list(with_net).c_str(),
              median(with_init));
  std::printf("  boot without network %.2f s (%s), agent init %.3f s\n", median(without_net), list(without_net).c_str(),
              median(without_init));
  std::printf("  network boot cost: %+.2f s (%.2fx); agent init %+.3f s\n", median(with_net) - median(without_net),
              median(with_net) / median(without_net), median(with_init) - median(without_init));
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mb = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 200;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 3;
  const int boots = argc > 3 ? std::atoi(argv[3]) : 5;
  try {
    Nginx nginx(mb);
    Sink sink;
    const std::string port = std::to_string(nginx.port());
    std::printf("guest network benchmark: %zu MB download, %zu MB upload, %d runs, %d boots each\n", mb, mb / 2, runs,
                boots);

    std::vector<Path> paths(4);
    auto ours = [&](std::uint16_t mtu) {
      VmHooks h;
      h.egress = [&](asio::io_context& io, const NetworkOptions&) -> std::unique_ptr<net::EgressHandlers> {
        return std::make_unique<BenchEgress>(io, nginx.port());
      };
      h.mtu = mtu;
      return h;
    };
    paths[0].name = "gondolin MTU 16384";
    paths[0].vm = std::make_unique<Vm>(VmInternals::create(VmOptions{}, ours(16384)));
    paths[1].name = "gondolin MTU 1500";
    paths[1].vm = std::make_unique<Vm>(VmInternals::create(VmOptions{}, ours(1500)));
    for (int i = 0; i < 2; ++i) {
      paths[static_cast<std::size_t>(i)].http_host = "http://bench.test:" + port + "/blob";
      paths[static_cast<std::size_t>(i)].upload_host = "198.18.0.1/9000";
      paths[static_cast<std::size_t>(i)].stack_in_this_process = true;
    }
    paths[2].name = "qemu -netdev user";
    VmHooks user;
    user.qemu_network_args = {"-netdev", "user,id=net0", "-device", "virtio-net-device,netdev=net0"};
    paths[2].vm = std::make_unique<Vm>(VmInternals::create(VmOptions{}, user));
    paths[2].http_host = "http://10.0.2.2:" + port + "/blob";
    paths[2].upload_host = "10.0.2.2/" + std::to_string(sink.port());
    paths[3].name = "gondolin HTTP proxy";
    VmOptions proxied;
    proxied.network.allow_hosts = {"bench.test"};
    config::test_knobs(proxied.network).loopback_hosts = {"bench.test"};
    paths[3].vm = std::make_unique<Vm>(VmInternals::create(proxied, VmHooks{}));
    paths[3].http_host = paths[0].http_host;
    paths[3].stack_in_this_process = true;

    const double per100_down = 100.0 / static_cast<double>(mb), per100_up = 100.0 / static_cast<double>(mb / 2);
    for (int i = 0; i < runs; ++i)
      for (auto& p : paths) {
        double rate = 0;
        p.down_cpu.push_back(cpu_of(p, [&] { rate = download_mb_s(*p.vm, p.http_host, mb); }) * per100_down);
        p.down.push_back(rate);
        if (p.upload_host.empty()) continue;
        p.up_cpu.push_back(cpu_of(p, [&] { rate = upload_mb_s(*p.vm, p.upload_host, mb / 2); }) * per100_up);
        p.up.push_back(rate);
      }
    report(paths);
    std::fflush(stdout);
    if (boots > 0) measure_boot_cost(boots);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gondolin-bench-net: %s\n", e.what());
    return 1;
  }
  return 0;
}
