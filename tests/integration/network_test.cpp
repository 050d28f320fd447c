// The guest's network with a real guest: eth0 from DHCP, ping, synthetic DNS,
// flows arriving at egress classified and attributed, and everything else
// (raw TCP, other UDP, IPv6) going nowhere.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/write.hpp>

#include <cstring>
#include <memory>
#include <mutex>

#include "gondolin/session.h"
#include "gondolin/vm.h"
#include "net/flow_classifier.h"
#include "test_support.h"
#include "vm/vm_internals.h"

using namespace gondolin;
namespace asio = boost::asio;

namespace {

// What egress saw, shared between the VM's io thread and the test.
struct EgressLog {
  struct Flow {
    net::GuestFlowInfo info;
    net::FlowKind kind;
    std::string prefix;
  };
  std::mutex mutex;
  std::vector<Flow> flows;
  std::vector<Flow> snapshot() {
    std::lock_guard lock(mutex);
    return flows;
  }
};

// Answers HTTP itself (200 with a fixed body); refuses everything else.
class TestEgress : public net::EgressHandlers {
 public:
  static constexpr const char* kBody = "hello from the test egress\n";
  explicit TestEgress(std::shared_ptr<EgressLog> log) : log_(std::move(log)) {}
  void on_http(net::GuestFlow f) override {
    record(f);
    auto s = std::make_shared<asio::local::stream_protocol::socket>(std::move(f.socket));
    auto text =
        std::make_shared<std::string>(std::string("HTTP/1.1 200 OK\r\nContent-Length: ") +
                                      std::to_string(std::strlen(kBody)) + "\r\nConnection: close\r\n\r\n" + kBody);
    asio::async_write(*s, asio::buffer(*text), [s, text](const boost::system::error_code&, std::size_t) {
      boost::system::error_code ignored;
      s->shutdown(asio::socket_base::shutdown_both, ignored);
      s->close(ignored);
    });
  }
  void on_tls(net::GuestFlow f) override { refuse(f); }
  void on_ssh(net::GuestFlow f) override { refuse(f); }
  void on_other(net::GuestFlow f) override { refuse(f); }

 private:
  void record(const net::GuestFlow& f) {
    std::lock_guard lock(log_->mutex);
    log_->flows.push_back({f.info, f.kind, f.prefix});
  }
  void refuse(net::GuestFlow& f) {
    record(f);
    f.socket.close();
  }
  std::shared_ptr<EgressLog> log_;
};

net::EgressFactory recording_egress(std::shared_ptr<EgressLog> log) {
  return [log](asio::io_context&, const NetworkOptions&) -> std::unique_ptr<net::EgressHandlers> {
    return std::make_unique<TestEgress>(log);
  };
}

std::string sh(Vm& vm, const std::string& script, int* exit_code = nullptr) {
  auto r = vm.exec(script);
  if (exit_code) *exit_code = r.exit_code;
  return r.stdout_data + r.stderr_data;
}

// A UDP socket on the host that records whether anything arrives.
struct HostUdpListener {
  int fd = -1;
  std::uint16_t port = 0;
  HostUdpListener() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~HostUdpListener() { ::close(fd); }
  HostUdpListener(const HostUdpListener&) = delete;
  HostUdpListener& operator=(const HostUdpListener&) = delete;
  bool received_anything() const {
    char buf[64];
    return ::recv(fd, buf, sizeof buf, 0) >= 0;
  }
};

// Seconds printed on the last line of `out`.
double last_number(const std::string& out) {
  auto nl = out.find_last_of('\n', out.size() >= 2 ? out.size() - 2 : 0);
  return std::stod(out.substr(nl == std::string::npos ? 0 : nl + 1));
}

}  // namespace

class GuestNetwork : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    log_ = std::make_shared<EgressLog>();
    VmOptions o;
    o.network.host_mapping = SyntheticHostMapping::PerHost;
    vm_ = std::make_unique<Vm>(VmInternals::create(o, recording_egress(log_)));
  }
  static void TearDownTestSuite() { vm_.reset(); }
  static std::unique_ptr<Vm> vm_;
  static std::shared_ptr<EgressLog> log_;
};
std::unique_ptr<Vm> GuestNetwork::vm_;
std::shared_ptr<EgressLog> GuestNetwork::log_;

TEST_F(GuestNetwork, Eth0IsConfiguredByDhcp) {
  std::string addr = sh(*vm_, "ip -4 -o addr show dev eth0");
  EXPECT_NE(addr.find("inet 10.0.2.15/24"), std::string::npos) << addr;
  EXPECT_NE(sh(*vm_, "ip route show default").find("default via 10.0.2.2 dev eth0"), std::string::npos);
  EXPECT_EQ(sh(*vm_, "cat /etc/resolv.conf"), "nameserver 10.0.2.2\n");
  EXPECT_NE(sh(*vm_, "ip link show eth0").find("mtu 16384"), std::string::npos);
}

TEST_F(GuestNetwork, PingsTheGatewayAndNothingElse) {
  int rc = -1;
  std::string out = sh(*vm_, "ping -c1 -W5 10.0.2.2", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("1 received"), std::string::npos) << out;
  EXPECT_NE(sh(*vm_, "ping -c1 -W1 1.1.1.1; echo rc=$?").find("rc=1"), std::string::npos);
}

TEST_F(GuestNetwork, SyntheticDnsGivesEachHostItsOwnAddress) {
  std::string a = sh(*vm_, "getent hosts example.com | cut -d' ' -f1");
  std::string b = sh(*vm_, "getent hosts api.github.com | cut -d' ' -f1");
  std::string a_again = sh(*vm_, "getent hosts EXAMPLE.com | cut -d' ' -f1");
  EXPECT_EQ(a.rfind("198.1", 0), 0u) << a;
  EXPECT_EQ(b.rfind("198.1", 0), 0u) << b;
  EXPECT_NE(a, b);
  EXPECT_EQ(a, a_again);
  // localhost (and names under it) is the guest's own loopback.
  EXPECT_EQ(sh(*vm_, "python3 -c 'import socket; print(socket.gethostbyname(\"app.localhost\"))'"), "127.0.0.1\n");
  // No AAAA records: nothing tempts a client into IPv6.
  EXPECT_EQ(sh(*vm_,
               "python3 -c 'import socket\n"
               "try:\n"
               "    print(socket.getaddrinfo(\"example.com\", 80, socket.AF_INET6))\n"
               "except socket.gaierror:\n"
               "    print(\"no IPv6 address\")'"),
            "no IPv6 address\n");
}

TEST_F(GuestNetwork, HttpFlowReachesEgressClassifiedAndAttributed) {
  int rc = -1;
  std::string out = sh(*vm_, "curl -sS -m 20 http://anything.test/some/path", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, TestEgress::kBody);
  auto flows = log_->snapshot();
  ASSERT_FALSE(flows.empty());
  const auto& f = flows.back();
  EXPECT_EQ(f.kind, net::FlowKind::Http);
  EXPECT_EQ(f.prefix.rfind("GET /some/path HTTP/1.1\r\n", 0), 0u) << f.prefix;
  ASSERT_TRUE(f.info.hostname);
  EXPECT_EQ(*f.info.hostname, "anything.test");
  EXPECT_EQ(f.info.dest_port, 80);
  EXPECT_EQ(f.info.dest_ip[0], 198);
  EXPECT_EQ(net::to_string(f.info.guest_ip), "10.0.2.15");
}

TEST_F(GuestNetwork, TlsFlowReachesEgressAsTls) {
  int rc = -1;
  sh(*vm_, "curl -sS -m 20 https://secure.test/", &rc);
  EXPECT_NE(rc, 0);  // the test egress refuses it
  auto flows = log_->snapshot();
  ASSERT_FALSE(flows.empty());
  const auto& f = flows.back();
  EXPECT_EQ(f.kind, net::FlowKind::Tls);
  ASSERT_GE(f.prefix.size(), 6u);
  EXPECT_EQ(static_cast<unsigned char>(f.prefix[0]), 0x16);
  EXPECT_EQ(f.info.hostname.value_or(""), "secure.test");
  EXPECT_EQ(f.info.dest_port, 443);
}

TEST_F(GuestNetwork, RawTcpIsRefusedFast) {
  // The client speaks first, in no protocol egress knows: reset at once.
  std::string talk = sh(*vm_, R"(python3 - <<'EOF'
import socket, time
t = time.time()
s = socket.create_connection(("203.0.113.9", 9999), timeout=10)
s.sendall(b"hello\n")
try:
    print("data", s.recv(100))
except ConnectionResetError:
    print("reset")
print("%.2f" % (time.time() - t))
EOF)");
  EXPECT_EQ(talk.rfind("reset\n", 0), 0u) << talk;
  EXPECT_LT(last_number(talk), 1.0) << talk;
  // The client waits for the server (nc-style): reset once classification
  // gives up (10 s: slow TLS clients must not be cut off before they speak).
  std::string silent = sh(*vm_, R"(python3 - <<'EOF'
import socket, time
t = time.time()
s = socket.create_connection(("203.0.113.9", 22000), timeout=30)
try:
    print("data", s.recv(100))
except ConnectionResetError:
    print("reset")
print("%.2f" % (time.time() - t))
EOF)");
  EXPECT_EQ(silent.rfind("reset\n", 0), 0u) << silent;
  EXPECT_GT(last_number(silent), 9.0) << silent;
  EXPECT_LT(last_number(silent), 13.0) << silent;
  // The gateway itself has no open ports: refused outright.
  EXPECT_NE(sh(*vm_, "timeout 5 bash -c 'echo > /dev/tcp/10.0.2.2/80' 2>&1; echo rc=$?").find("Connection refused"),
            std::string::npos);
}

TEST_F(GuestNetwork, UdpOtherThanDnsGoesNowhere) {
  HostUdpListener host;
  const std::string port = std::to_string(host.port);
  std::string out = sh(*vm_,
                       "python3 -c '\n"
                       "import socket\n"
                       "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                       "s.settimeout(1)\n"
                       "for dst in (\"10.0.2.2\", \"198.18.0.1\", \"203.0.113.9\"):\n"
                       "    s.sendto(b\"leak\", (dst, " +
                           port +
                           "))\n"
                           "try:\n"
                           "    print(\"answer\", s.recvfrom(100))\n"
                           "except socket.timeout:\n"
                           "    print(\"silence\")\n'");
  EXPECT_EQ(out, "silence\n");
  EXPECT_FALSE(host.received_anything());
}

TEST_F(GuestNetwork, Ipv6DoesNotLeave) {
  const std::size_t flows_before = log_->snapshot().size();
  // Give the guest everything it would need to try: an address and a route.
  std::string out = sh(*vm_, R"(ip -6 addr add 2001:db8::2/64 dev eth0 nodad
ip -6 route add default via 2001:db8::1 dev eth0
python3 - <<'EOF'
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.settimeout(4)
try:
    s.connect(("2001:db8:1::1", 80))
    print("connected")
except OSError:
    print("failed")
EOF
ip -6 route del default; ip -6 addr del 2001:db8::2/64 dev eth0)");
  EXPECT_EQ(out, "failed\n");
  EXPECT_EQ(log_->snapshot().size(), flows_before);
}

TEST(GuestNetworkCli, NoNetworkMeansNoInterface) {
  auto r = gondolin::testing::run_gondolin({"exec", "--no-network", "--", "sh", "-c", "ls /sys/class/net"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "lo\n");
}

TEST(GuestNetworkCli, SingleMappingAnswersOneAddressAndUnlistedHostsAreRefused) {
  auto r = gondolin::testing::run_gondolin({"exec", "--", "sh", "-c",
                                            "getent hosts a.test b.test | cut -d' ' -f1; curl -sS -m 10 -w "
                                            "'\\n%{http_code}\\n' http://a.test/; echo rc=$?"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("198.18.0.1\n198.18.0.1\n", 0), 0u) << r.out;
  // No --allow-host: gondolin answers for the host, which is never contacted.
  EXPECT_NE(r.out.find("\"a.test\" is not in the allowlist"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n403\nrc=0\n"), std::string::npos) << r.out;
}

TEST(GuestNetworkCli, BadNetworkFlagsFailBeforeBooting) {
  auto bad_mode = gondolin::testing::run_gondolin({"exec", "--dns", "magic", "--", "true"});
  EXPECT_EQ(bad_mode.exit_code, 125);
  EXPECT_NE(bad_mode.err.find("invalid --dns 'magic'"), std::string::npos) << bad_mode.err;
  auto mapping = gondolin::testing::run_gondolin(
      {"exec", "--dns", "trusted", "--dns-synthetic-host-mapping", "per-host", "--", "true"});
  EXPECT_EQ(mapping.exit_code, 125);
  EXPECT_NE(mapping.err.find("applies to --dns synthetic only"), std::string::npos) << mapping.err;
  auto server =
      gondolin::testing::run_gondolin({"exec", "--dns", "trusted", "--dns-trusted-server", "300.1.1.1", "--", "true"});
  EXPECT_EQ(server.exit_code, 125);
  EXPECT_NE(server.err.find("invalid --dns-trusted-server '300.1.1.1'"), std::string::npos) << server.err;
  auto both = gondolin::testing::run_gondolin({"exec", "--no-network", "--dns", "open", "--", "true"});
  EXPECT_EQ(both.exit_code, 125);
}

TEST(GuestNetworkSnapshot, NetworkWorksAfterResume) {
  gondolin::testing::TempDir tmp;
  {
    Vm vm = Vm::create({});
    vm.snapshot(tmp.path() / "snap");
  }
  Vm resumed = Vm::resume((tmp.path() / "snap").string(), {});
  // Same address, same gateway, a fresh stack on the host that answers it.
  EXPECT_NE(sh(resumed, "ip -4 -o addr show dev eth0").find("10.0.2.15/24"), std::string::npos);
  int rc = -1;
  std::string out = sh(resumed, "ping -c1 -W5 10.0.2.2 >/dev/null && getent hosts after.resume.test", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "198.18.0.1      after.resume.test\n");
}
