// DNS modes `trusted` and `open` with a real guest, against a resolver the
// test runs on a loopback address (port 53, so it needs root; skipped else).
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include <mutex>
#include <thread>

#include "gondolin/vm.h"
#include "net/dns_message.h"
#include "test_support.h"

using namespace gondolin;
namespace asio = boost::asio;
using asio::ip::udp;

namespace {

// One loopback address per test, so tests running in parallel never share port 53.
constexpr const char* kTrustedResolverIp = "127.0.0.77";
constexpr const char* kOpenResolverIp = "127.0.0.78";
constexpr const char* kSyntheticResolverIp = "127.0.0.79";
constexpr const char* kTunnelResolverIp = "127.0.0.80";

// Answers every A query with 192.0.2.77 and records what it was sent.
class LoopbackResolver {
 public:
  explicit LoopbackResolver(const char* ip) : socket_(io_) {
    boost::system::error_code ec;
    socket_.open(udp::v4(), ec);
    if (!ec) socket_.bind(udp::endpoint(asio::ip::make_address(ip), 53), ec);
    if (ec) {
      error_ = ec.message();
      return;
    }
    receive();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~LoopbackResolver() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  const std::string& error() const { return error_; }
  std::vector<std::vector<std::uint8_t>> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  void receive() {
    socket_.async_receive_from(asio::buffer(buf_), from_, [this](const boost::system::error_code& ec, std::size_t n) {
      if (ec) return;
      std::vector<std::uint8_t> msg(buf_.begin(), buf_.begin() + static_cast<long>(n));
      {
        std::lock_guard lock(mutex_);
        received_.push_back(msg);
      }
      auto q = net::parse_dns_query(msg);
      if (q) {
        std::vector<net::DnsRecord> answers;
        if (q->question.type == net::kDnsTypeA) answers.push_back({net::kDnsTypeA, 5, {192, 0, 2, 77}});
        auto r = net::build_dns_response(q.value(), net::DnsRcode::NoError, answers);
        socket_.send_to(asio::buffer(r), from_);
      }
      receive();
    });
  }

  asio::io_context io_;
  udp::socket socket_;
  std::array<std::uint8_t, 4096> buf_{};
  udp::endpoint from_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::vector<std::uint8_t>> received_;
  std::string error_;
};

// A DNS query in Python bytes syntax for a name whose label has a space.
constexpr const char* kSendMalformedQuery = R"(python3 - <<'EOF'
import socket
q = bytes.fromhex("abcd01000001000000000000") + b"\x07bad one\x04test\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, ("10.0.2.2", 53))
try:
    r = s.recv(512)
    print("rcode", r[3] & 15)
except socket.timeout:
    print("silence")
EOF)";

bool contains_name(const std::vector<std::uint8_t>& msg, const std::string& label) {
  return std::search(msg.begin(), msg.end(), label.begin(), label.end()) != msg.end();
}

}  // namespace

TEST(GuestDns, TrustedModeForwardsOnlyWellFormedQueries) {
  LoopbackResolver resolver(kTrustedResolverIp);
  ASSERT_TRUE(resolver.error().empty()) << "cannot bind " << kTrustedResolverIp << ":53: " << resolver.error();
  VmOptions o;
  o.network.dns = DnsMode::Trusted;
  o.network.trusted_dns_servers = {kTrustedResolverIp};
  Vm vm = Vm::create(o);

  auto r = vm.exec(std::string("getent hosts www.forwarded.test"));
  EXPECT_EQ(r.stdout_data, "192.0.2.77      www.forwarded.test\n") << r.stderr_data;
  auto seen = resolver.received();
  ASSERT_FALSE(seen.empty());
  EXPECT_TRUE(contains_name(seen.back(), "forwarded"));

  const std::size_t before = resolver.received().size();
  auto bad = vm.exec(std::string(kSendMalformedQuery));
  EXPECT_EQ(bad.stdout_data, "rcode 1\n");  // FORMERR from the host, not forwarded
  EXPECT_EQ(resolver.received().size(), before);
}

TEST(GuestDns, OpenModeForwardsQueriesAsSent) {
  LoopbackResolver resolver(kOpenResolverIp);
  ASSERT_TRUE(resolver.error().empty()) << "cannot bind " << kOpenResolverIp << ":53: " << resolver.error();
  VmOptions o;
  o.network.dns = DnsMode::Open;
  o.network.trusted_dns_servers = {kOpenResolverIp};
  Vm vm = Vm::create(o);

  auto r = vm.exec(std::string("getent hosts open.test"));
  EXPECT_EQ(r.stdout_data, "192.0.2.77      open.test\n") << r.stderr_data;
  auto bad = vm.exec(std::string(kSendMalformedQuery));
  EXPECT_EQ(bad.stdout_data, "silence\n");  // our resolver ignores what it cannot parse
  bool forwarded = false;
  for (const auto& m : resolver.received()) forwarded |= contains_name(m, "bad one");
  EXPECT_TRUE(forwarded);
}

TEST(GuestDns, SyntheticModeNeverForwards) {
  LoopbackResolver resolver(kSyntheticResolverIp);
  ASSERT_TRUE(resolver.error().empty()) << "cannot bind " << kSyntheticResolverIp << ":53: " << resolver.error();
  Vm vm = Vm::create({});
  // Long labels, many names: a tunnelling attempt gets synthetic answers and nothing more.
  auto r = vm.exec(std::string(
      "for i in 1 2 3 4 5; do getent hosts $(head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \\n').exfil.test; done "
      "| cut -d' ' -f1 | sort -u"));
  EXPECT_EQ(r.stdout_data, "198.18.0.1\n");
  EXPECT_TRUE(resolver.received().empty());
}

TEST(GuestDns, SyntheticModeAnswersTunnelShapedQueriesLocally) {
  LoopbackResolver resolver(kTunnelResolverIp);
  ASSERT_TRUE(resolver.error().empty()) << "cannot bind " << kTunnelResolverIp << ":53: " << resolver.error();
  VmOptions o;
  o.network.trusted_dns_servers = {kTunnelResolverIp};  // configured, but synthetic mode must not use it
  Vm vm = Vm::create(o);
  // Maximal labels full of data, TXT and NULL queries, binary labels: raw
  // packets, so no resolver library shortens or refuses them first.
  auto r = vm.exec(std::string(R"(python3 - <<'EOF'
import os, socket, struct
def query(labels, qtype):
    q = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    for l in labels:
        q += bytes([len(l)]) + l
    return q + b"\0" + struct.pack("!HH", qtype, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
cases = [([os.urandom(31).hex()[:63].encode() for _ in range(3)] + [b"exfil", b"test"], 1),
         ([os.urandom(31).hex()[:63].encode() for _ in range(3)] + [b"exfil", b"test"], 16),
         ([b"data" * 15, b"exfil", b"test"], 10),
         ([bytes(range(1, 60)), b"exfil", b"test"], 1)]
for labels, qtype in cases:
    s.sendto(query(labels, qtype), ("10.0.2.2", 53))
    try:
        r = s.recv(512)
        print("rcode", r[3] & 15, "answers", struct.unpack("!H", r[6:8])[0])
    except socket.timeout:
        print("silence")
EOF)"));
  EXPECT_EQ(r.stdout_data, "rcode 0 answers 1\nrcode 0 answers 0\nrcode 0 answers 0\nrcode 1 answers 0\n")
      << r.stderr_data;
  EXPECT_TRUE(resolver.received().empty()) << resolver.received().size() << " queries reached the resolver";
}
