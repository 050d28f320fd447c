// The idle timeout of mapped TCP and ingress (NetworkOptions::tcp_idle_timeout):
// an EgressService on its own io thread with real sockets on 127.0.0.1. A
// silent connection is closed on both sides and its close line in the egress
// log says why; one that keeps moving bytes outlives the timeout.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../io_thread.h"
#include "egress/egress_service.h"
#include "util/unique_fd.h"

using namespace gondolin;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kIdle = 200ms;

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  return a;
}

// A listening socket on 127.0.0.1 (port 0: any); `port` gets the one bound.
UniqueFd listen_loopback(std::uint16_t& port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(port);
  socklen_t len = sizeof a;
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(fd.get(), 4), 0);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

std::uint16_t free_port() {
  std::uint16_t port = 0;
  listen_loopback(port);  // closed again at once
  return port;
}

UniqueFd connect_loopback(std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a = loopback(port);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

bool readable_within(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

UniqueFd accept_within(int listener, std::chrono::milliseconds timeout) {
  if (!readable_within(listener, timeout)) return UniqueFd();
  return UniqueFd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
}

// True once the peer has closed (EOF or reset); false on data or timeout.
bool closed_within(int fd, std::chrono::milliseconds timeout) {
  if (!readable_within(fd, timeout)) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

void send_all(int fd, const std::string& s) {
  ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), ssize_t(s.size()));
}

std::string recv_exactly(int fd, std::size_t n) {
  std::string out;
  while (out.size() < n && readable_within(fd, 5s)) {
    char buf[256];
    ssize_t got = ::recv(fd, buf, std::min(sizeof buf, n - out.size()), 0);
    if (got <= 0) break;
    out.append(buf, static_cast<std::size_t>(got));
  }
  return out;
}

class TcpIdleTimeout : public ::testing::Test {
 protected:
  TcpIdleTimeout() : dir_(std::filesystem::temp_directory_path() / ("gondolin-idle-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~TcpIdleTimeout() override {
    io_.run([&] {
      service_.reset();
      return 0;
    });
    std::filesystem::remove_all(dir_);
  }

  void start(NetworkOptions o, std::chrono::milliseconds idle = kIdle) {
    o.mitm_ca_dir = (dir_ / "mitm").string();
    o.egress_log_path = log_path().string();
    o.tcp_idle_timeout = idle;
    io_.run([&] {
      service_ = std::make_unique<egress::EgressService>(io_.io(), o);
      return 0;
    });
  }

  // A guest flow to `host`:`port` handed to the service as the stack would; returns the guest's end.
  UniqueFd mapped_flow(const std::string& host, std::uint16_t port) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    io_.run([&] {
      boost::asio::local::stream_protocol::socket s(io_.io());
      s.assign(boost::asio::local::stream_protocol(), sv[1]);
      net::GuestFlowInfo info;
      info.flow_id = 7;
      info.dest_ip = {10, 0, 2, 100};
      info.dest_port = port;
      info.hostname = host;
      net::GuestFlow flow{std::move(info), net::FlowKind::Other, "", std::move(s)};
      EXPECT_TRUE(service_->is_mapped(flow.info));
      service_->on_mapped(std::move(flow));
      return 0;
    });
    return UniqueFd(sv[0]);
  }

  std::filesystem::path log_path() const { return dir_ / "egress.log"; }

  // The egress log's "close" line, waiting a moment for it to be written.
  nlohmann::json close_line() {
    for (auto until = Clock::now() + 5s; Clock::now() < until; std::this_thread::sleep_for(10ms)) {
      std::ifstream in(log_path());
      for (std::string line; std::getline(in, line);) {
        auto j = nlohmann::json::parse(line);
        if (j.value("event", "") == "close") return j;
      }
    }
    return nullptr;
  }

  std::filesystem::path dir_;
  test_support::IoThread io_;
  std::unique_ptr<egress::EgressService> service_;
};

NetworkOptions with_tcp_map(std::uint16_t upstream_port) {
  NetworkOptions o;
  o.host_mapping = SyntheticHostMapping::PerHost;
  o.tcp_maps = {TcpMap{"db.internal", 0, "127.0.0.1", upstream_port}};
  return o;
}

}  // namespace

TEST_F(TcpIdleTimeout, SilentMappedFlowIsClosedOnBothSidesAndLogged) {
  std::uint16_t port = 0;
  UniqueFd upstream_listener = listen_loopback(port);
  start(with_tcp_map(port));
  // The proxy's idle clock starts once it has connected upstream, which is
  // after this point and may be before our accept() returns: measure from
  // here, the earliest moment it can start.
  const auto opened = Clock::now();
  UniqueFd guest = mapped_flow("db.internal", 5432);
  UniqueFd upstream = accept_within(upstream_listener.get(), 5s);
  ASSERT_TRUE(upstream.valid()) << "the mapped flow never reached the upstream";

  EXPECT_TRUE(closed_within(upstream.get(), 5s)) << "upstream side still open";
  EXPECT_TRUE(Clock::now() - opened >= kIdle) << "closed before the timeout";
  EXPECT_TRUE(closed_within(guest.get(), 1s)) << "guest side still open";

  auto line = close_line();
  ASSERT_FALSE(line.is_null()) << "no close line in the egress log";
  EXPECT_EQ(line["kind"], "tcp");
  EXPECT_EQ(line["host"], "db.internal");
  EXPECT_EQ(line["reason"], "idle timeout: no bytes either way for 200 ms");
  EXPECT_EQ(line["bytes_from_guest"], 0);
  EXPECT_EQ(line["bytes_to_guest"], 0);
}

TEST_F(TcpIdleTimeout, BytesEitherWayKeepAMappedFlowOpen) {
  std::uint16_t port = 0;
  UniqueFd upstream_listener = listen_loopback(port);
  // Longer than the others: a slow machine must not make a gap look idle.
  constexpr auto idle = 500ms;
  start(with_tcp_map(port), idle);
  UniqueFd guest = mapped_flow("db.internal", 5432);
  UniqueFd upstream = accept_within(upstream_listener.get(), 5s);
  ASSERT_TRUE(upstream.valid());
  // Pings from the guest and answers from the upstream, each far under the
  // timeout apart, for three times the timeout.
  for (auto until = Clock::now() + 3 * idle; Clock::now() < until;) {
    send_all(guest.get(), "ping");
    ASSERT_EQ(recv_exactly(upstream.get(), 4), "ping");
    std::this_thread::sleep_for(idle / 20);
    send_all(upstream.get(), "pong");
    ASSERT_EQ(recv_exactly(guest.get(), 4), "pong");
    std::this_thread::sleep_for(idle / 20);
  }
  // Then silence ends it.
  EXPECT_TRUE(closed_within(guest.get(), 5s));
  auto line = close_line();
  ASSERT_FALSE(line.is_null());
  EXPECT_NE(line["reason"].get<std::string>().find("idle timeout"), std::string::npos) << line.dump();
  EXPECT_GE(line["bytes_from_guest"].get<int>(), 12);
}

TEST_F(TcpIdleTimeout, SilentIngressConnectionIsClosedOnBothSidesAndLogged) {
  const std::uint16_t port = free_port();
  NetworkOptions o;
  o.ingress = {Ingress{"127.0.0.1", port, 8000}};
  start(o);
  // The "guest" port is one end of a socket pair; the test holds the other.
  UniqueFd guest;
  io_.run([&] {
    service_->start_ingress([&](std::uint16_t guest_port, std::string&) -> std::optional<UniqueFd> {
      EXPECT_EQ(guest_port, 8000);
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return std::nullopt;
      guest = UniqueFd(sv[0]);
      return UniqueFd(sv[1]);
    });
    return 0;
  });
  UniqueFd client = connect_loopback(port);
  send_all(client.get(), "GET /");  // some bytes first: the timeout counts from the last one
  const auto sent = Clock::now();
  for (auto until = Clock::now() + 5s; Clock::now() < until && !io_.run([&] { return guest.valid(); });)
    std::this_thread::sleep_for(5ms);
  UniqueFd guest_end = io_.run([&] { return std::move(guest); });
  ASSERT_TRUE(guest_end.valid()) << "the ingress connection was never dialled";
  EXPECT_EQ(recv_exactly(guest_end.get(), 5), "GET /");

  EXPECT_TRUE(closed_within(client.get(), 5s)) << "host client still connected";
  EXPECT_TRUE(Clock::now() - sent >= kIdle) << "closed before the timeout";
  EXPECT_TRUE(closed_within(guest_end.get(), 1s)) << "guest side still open";

  auto line = close_line();
  ASSERT_FALSE(line.is_null()) << "no close line in the egress log";
  EXPECT_EQ(line["kind"], "ingress");
  EXPECT_EQ(line["reason"], "idle timeout: no bytes either way for 200 ms");
  EXPECT_EQ(line["bytes_to_guest"], 5);
}
