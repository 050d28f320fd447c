// Egress end to end without a VM: real curl (over a unix socket, exactly the
// stream a guest flow becomes) or raw bytes, through EgressService, to real
// upstream servers on 127.0.0.1.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "config/test_knobs.h"
#include "egress_proxy_fixture.h"
#include "gondolin/http_hooks.h"
#include "sha256_hex.h"

using namespace gondolin;
using namespace gondolin::egress;
using namespace gondolin::egress::testing;
using gondolin::testing::sha256_hex;

TEST_F(EgressProxyTest, AllowlistHitMissAndWildcard) {
  auto o = options();
  o.allow_hosts = {"upstream.test"};
  EgressHarness h(o);
  h.set_destination(plain_->port());
  auto hit = fetch(h, {http_url("upstream.test", "/echo")});
  EXPECT_EQ(hit.status, 200);
  EXPECT_EQ(json_of(hit)["headers"]["Host"], "upstream.test:" + std::to_string(plain_->port()));

  auto miss = fetch(h, {http_url("other.test", "/echo")});
  EXPECT_EQ(miss.status, 403);
  EXPECT_EQ(miss.body, "gondolin: host \"other.test\" is not in the allowlist\n");

  auto wild = options();
  wild.allow_hosts = {"*.TEST"};
  EgressHarness w(wild);
  w.set_destination(plain_->port());
  EXPECT_EQ(fetch(w, {http_url("other.test", "/echo")}).status, 200);

  auto lines = h.log_lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["decision"], "allow");
  EXPECT_EQ(lines[0]["rule"], "allow-host upstream.test");
  EXPECT_EQ(lines[0]["method"], "GET");
  EXPECT_EQ(lines[0]["path"], "/echo");
  EXPECT_EQ(lines[1]["decision"], "deny");
  EXPECT_EQ(lines[1]["rule"], "not-in-allowlist");
  EXPECT_EQ(lines[1]["host"], "other.test");
}

TEST_F(EgressProxyTest, NoAllowlistDeniesEverything) {
  EgressHarness h(options());
  h.set_destination(plain_->port());
  auto r = fetch(h, {http_url("upstream.test", "/echo")});
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("not in the allowlist"), std::string::npos);
}

TEST_F(EgressProxyTest, ConnectIsRefused) {
  auto o = options();
  o.allow_all_hosts = true;
  EgressHarness h(o);
  h.set_destination(443);
  UniqueFd fd = h.raw_flow(net::FlowKind::Http);
  std::string reply =
      send_and_read_all(fd.get(), "CONNECT upstream.test:443 HTTP/1.1\r\nHost: upstream.test:443\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 405 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("gondolin: CONNECT is not allowed"), std::string::npos);
  EXPECT_NE(reply.find("Connection: close"), std::string::npos);
}

TEST_F(EgressProxyTest, HttpsThroughTheMitmWithMintedCertificate) {
  auto o = options();
  o.allow_hosts = {"upstream.test"};
  o.secrets = {HostSecret{"TOKEN", {"upstream.test"}, "tls-secret", {}, {}, {}, {}}};
  EgressHarness h(o);
  h.set_destination(tls_->port());
  auto r =
      fetch(h, {"-v", "-H", "Authorization: Bearer " + h.placeholder("TOKEN"), https_url("upstream.test", "/digest")});
  ASSERT_EQ(r.status, 200) << r.curl_err;
  EXPECT_EQ(json_of(r)["headers"]["Authorization"], sha256_hex("Bearer tls-secret"));
  EXPECT_NE(r.curl_err.find("issuer: O=Gondolin; CN=Gondolin MITM CA"), std::string::npos) << r.curl_err;
  EXPECT_NE(r.curl_err.find("subject: O=Gondolin; CN=upstream.test"), std::string::npos);

  auto denied = fetch(h, {https_url("other.test", "/echo")});
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(denied.body, "gondolin: host \"other.test\" is not in the allowlist\n");
}

TEST_F(EgressProxyTest, SniMustMatchHost) {
  auto o = options();
  o.allow_hosts = {"*.test"};
  EgressHarness h(o);
  h.set_destination(tls_->port());
  auto r = fetch(h, {"-H", "Host: other.test:" + std::to_string(tls_->port()), https_url("upstream.test", "/echo")});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, "gondolin: TLS server name \"upstream.test\" does not match Host \"other.test\"\n");
}

TEST_F(EgressProxyTest, UpstreamWithBadCertificateIs502) {
  auto o = options();
  o.allow_hosts = {"badcert.test"};
  EgressHarness h(o);
  h.set_destination(untrusted_->port());
  auto r = fetch(h, {"https://badcert.test:" + std::to_string(untrusted_->port()) + "/echo"});
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(
      r.body.find("gondolin: upstream certificate for \"badcert.test\" failed verification: self-signed certificate"),
      std::string::npos)
      << r.body;
  auto lines = h.log_lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back()["decision"], "error");
  EXPECT_EQ(lines.back()["rule"], "tls-verify");
}

TEST_F(EgressProxyTest, UpstreamNotTrustedWithoutTheTestCa) {
  auto o = options();
  o.allow_hosts = {"upstream.test"};
  config::test_knobs(o).extra_upstream_ca_file.clear();
  EgressHarness h(o);
  h.set_destination(tls_->port());
  auto r = fetch(h, {https_url("upstream.test", "/echo")});
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.body.find("failed verification"), std::string::npos);
}

TEST_F(EgressProxyTest, InternalAddressesRefusedUnlessTestListed) {
  NetworkOptions o;  // no test loopback hosts
  o.allow_all_hosts = true;
  EgressHarness h(o);
  h.set_destination(plain_->port());
  auto literal = fetch(h, {"http://127.0.0.1:" + std::to_string(plain_->port()) + "/echo"});
  EXPECT_EQ(literal.status, 403);
  EXPECT_NE(literal.body.find("resolves to an internal address (127.0.0.1, loopback)"), std::string::npos)
      << literal.body;
  auto named = fetch(h, {"http://localhost:" + std::to_string(plain_->port()) + "/echo"});
  EXPECT_EQ(named.status, 403);
  EXPECT_NE(named.body.find("internal address"), std::string::npos);
  auto v6 = fetch(h, {"http://[::ffff:10.1.2.3]:" + std::to_string(plain_->port()) + "/echo"});
  EXPECT_EQ(v6.status, 403);
  auto meta = fetch(h, {"http://169.254.169.254:" + std::to_string(plain_->port()) + "/"});
  EXPECT_EQ(meta.status, 403);
  auto lines = h.log_lines();
  for (const auto& l : lines) EXPECT_EQ(l["rule"], "internal-address") << l.dump();

  auto listed = options();
  listed.allow_all_hosts = true;
  EgressHarness t(listed);
  t.set_destination(plain_->port());
  EXPECT_EQ(fetch(t, {http_url("upstream.test", "/echo")}).status, 200);
}

TEST_F(EgressProxyTest, SmugglingAttemptsRefused) {
  auto o = options();
  o.allow_all_hosts = true;
  EgressHarness h(o);
  h.set_destination(plain_->port());
  const std::string host = "Host: upstream.test:" + std::to_string(plain_->port()) + "\r\n";
  struct Case {
    std::string request;
    std::string expect;
  };
  const Case cases[] = {
      {"POST /upload HTTP/1.1\r\n" + host + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       "both Content-Length and Transfer-Encoding"},
      {"POST /upload HTTP/1.1\r\n" + host + "Content-Length: 4\r\nContent-Length: 40\r\n\r\nabcd",
       "duplicate Content-Length"},
      {"POST /upload HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n , identity\r\n\r\n",
       "obsolete line folding"},
      {"GET /echo HTTP/1.1\n" + host + "\n", "bare LF"},
      {"POST /upload HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, identity\r\n\r\n",
       "unsupported Transfer-Encoding"},
      {"POST /upload HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\n\r\n", "whitespace before a header colon"},
  };
  for (const auto& c : cases) {
    UniqueFd fd = h.raw_flow(net::FlowKind::Http);
    std::string reply = send_and_read_all(fd.get(), c.request);
    EXPECT_TRUE(reply.rfind("HTTP/1.1 400 ", 0) == 0 || reply.rfind("HTTP/1.1 501 ", 0) == 0) << reply;
    EXPECT_NE(reply.find(c.expect), std::string::npos) << reply;
  }
  // An invalid chunk size in the body: the exchange is cut, never forwarded as valid.
  UniqueFd fd = h.raw_flow(net::FlowKind::Http);
  std::string reply = send_and_read_all(
      fd.get(), "POST /upload HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n");
  EXPECT_EQ(reply.find("\"bytes\""), std::string::npos) << reply;
  auto lines = h.log_lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back()["reason"], "invalid chunked request body: chunk size too large");
}

TEST_F(EgressProxyTest, KeepAliveAndPipelining) {
  auto o = options();
  o.allow_all_hosts = true;
  EgressHarness h(o);
  h.set_destination(plain_->port());
  const std::string host = "Host: upstream.test:" + std::to_string(plain_->port()) + "\r\n";
  UniqueFd fd = h.raw_flow(net::FlowKind::Http);
  std::string three = "GET /echo?1 HTTP/1.1\r\n" + host + "\r\n" + "POST /upload HTTP/1.1\r\n" + host +
                      "Content-Length: 5\r\n\r\nhello" + "GET /echo?3 HTTP/1.1\r\n" + host +
                      "Connection: close\r\n\r\n";
  std::string reply = send_and_read_all(fd.get(), three);
  auto p1 = reply.find("/echo?1"), p2 = reply.find("\"bytes\": 5"), p3 = reply.find("/echo?3");
  ASSERT_NE(p1, std::string::npos) << reply;
  ASSERT_NE(p2, std::string::npos) << reply;
  ASSERT_NE(p3, std::string::npos) << reply;
  EXPECT_LT(p1, p2);
  EXPECT_LT(p2, p3);

  // curl reuses one guest connection for several URLs.
  auto r = h.curl({"-v", http_url("upstream.test", "/bytes?n=10"), http_url("upstream.test", "/bytes?n=20")});
  EXPECT_EQ(r.out, std::string(10, 'x') + std::string(20, 'x'));
  EXPECT_NE(r.err.find("Re-using existing connection"), std::string::npos);
}

TEST_F(EgressProxyTest, ResponsesReframedByTheHost) {
  auto o = options();
  o.allow_all_hosts = true;
  EgressHarness h(o);
  h.set_destination(plain_->port());
  auto chunked = fetch(h, {http_url("upstream.test", "/chunked?n=2500")});
  EXPECT_EQ(chunked.body, std::string(2500, 'y'));
  auto close = fetch(h, {http_url("upstream.test", "/close")});
  EXPECT_EQ(close.body, "until-close-body");
  auto head = h.curl({"-I", http_url("upstream.test", "/bytes?n=123")});
  EXPECT_NE(head.out.find("Content-Length: 123"), std::string::npos) << head.out;

  const std::string host = "Host: upstream.test:" + std::to_string(plain_->port()) + "\r\n";
  UniqueFd fd = h.raw_flow(net::FlowKind::Http);
  std::string req = "GET /chunked?n=1500 HTTP/1.1\r\n" + host + "\r\n";
  ::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL);
  std::string reply = read_until(fd.get(), "\r\n0\r\n\r\n");
  EXPECT_NE(reply.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(reply.find(";ext=1"), std::string::npos) << "extensions are not forwarded";
  EXPECT_EQ(reply.find("X-Trailer"), std::string::npos) << "trailers are not forwarded";
  UniqueFd fd10 = h.raw_flow(net::FlowKind::Http);
  std::string reply10 = send_and_read_all(fd10.get(), "GET /chunked?n=1500 HTTP/1.0\r\n" + host + "\r\n");
  EXPECT_EQ(reply10.find("Transfer-Encoding"), std::string::npos) << "HTTP/1.0 gets a close-delimited body";
  EXPECT_NE(reply10.find("\r\n\r\n" + std::string(1500, 'y')), std::string::npos);
}

TEST_F(EgressProxyTest, ChunkedUploadOf100MBStreamsWithBoundedMemory) {
  auto o = options();
  o.allow_all_hosts = true;
  EgressHarness h(o);
  h.set_destination(plain_->port());
  long before = current_rss_kib();
  std::atomic<long> peak{before};
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done) {
      peak = std::max(peak.load(), current_rss_kib());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  auto r = run_shell("head -c 104857600 /dev/zero | curl -sS --unix-socket '" + h.socket_path().string() +
                     "' --max-time 300 -X POST -T - -H 'Content-Type: application/octet-stream' " +
                     http_url("upstream.test", "/upload"));
  done = true;
  sampler.join();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["bytes"], 104857600);
  EXPECT_EQ(j["sha256"], "20492a4d0d84f8beb1767f6616229f85d44c2827b64bdbfb260ee12fa1109e0e");
  EXPECT_EQ(j["headers"]["Transfer-Encoding"], "chunked");
  long grown = peak - before;
  RecordProperty("rss_growth_kib", std::to_string(grown));
  std::printf("100 MB chunked upload: host RSS grew by %ld KiB (peak %ld KiB)\n", grown, peak.load());
  EXPECT_LT(grown, 16 * 1024) << "host memory grew by " << grown << " KiB while streaming 100 MB";
}

TEST_F(EgressProxyTest, WebSocketEchoAndDisabled) {
  auto o = options();
  o.allow_all_hosts = true;
  EgressHarness h(o);
  h.set_destination(plain_->port());
  const std::string upgrade = "GET /ws HTTP/1.1\r\nHost: upstream.test:" + std::to_string(plain_->port()) +
                              "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
  UniqueFd fd = h.raw_flow(net::FlowKind::Http);
  ASSERT_EQ(::send(fd.get(), upgrade.data(), upgrade.size(), MSG_NOSIGNAL), static_cast<ssize_t>(upgrade.size()));
  std::string head = read_until(fd.get(), "\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0u) << head;
  EXPECT_NE(head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), std::string::npos) << head;
  // A masked text frame "hello"; the server echoes it unmasked.
  const unsigned char mask[4] = {1, 2, 3, 4};
  std::string frame = "\x81\x85";
  frame.append(reinterpret_cast<const char*>(mask), 4);
  for (int i = 0; i < 5; ++i) frame += static_cast<char>("hello"[i] ^ mask[i % 4]);
  ASSERT_EQ(::send(fd.get(), frame.data(), frame.size(), MSG_NOSIGNAL), static_cast<ssize_t>(frame.size()));
  std::string echo = read_until(fd.get(), "hello");
  EXPECT_EQ(echo, "\x81\x05hello");

  o.websockets = false;
  EgressHarness off(o);
  off.set_destination(plain_->port());
  UniqueFd fd2 = off.raw_flow(net::FlowKind::Http);
  std::string reply = send_and_read_all(fd2.get(), upgrade);
  EXPECT_EQ(reply.rfind("HTTP/1.1 403 ", 0), 0u);
  EXPECT_NE(reply.find("gondolin: WebSocket upgrades are disabled"), std::string::npos);
}

TEST_F(EgressProxyTest, SshAndUnknownProtocolsClosedAndLogged) {
  EgressHarness h(options());
  h.set_destination(22, "git.example.com");
  UniqueFd ssh = h.raw_flow(net::FlowKind::Ssh, "SSH-2.0-OpenSSH_9.2\r\n");
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(send_and_read_all(ssh.get(), "", 5000), "");
  UniqueFd other = h.raw_flow(net::FlowKind::Other, std::string("\x00\x01\x02", 3));
  EXPECT_EQ(send_and_read_all(other.get(), "", 5000), "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2)) << "refused at once, not by timeout";
  auto lines = h.log_lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["kind"], "ssh");
  EXPECT_EQ(lines[0]["host"], "git.example.com");
  EXPECT_EQ(lines[0]["port"], 22);
  EXPECT_EQ(lines[0]["decision"], "deny");
  EXPECT_EQ(lines[1]["kind"], "other");
  EXPECT_EQ(lines[1]["rule"], "unrecognized-protocol");
}

TEST_F(EgressProxyTest, HooksInspectRewriteAndAnswer) {
  auto o = options();
  o.allow_hosts = {"upstream.test"};
  auto hooks = std::make_shared<HttpHooks>();
  hooks->on_request = [](HttpRequest& r) {
    if (r.host == "mock.test") return RequestVerdict::respond({200, "OK", {{"X-Mock", "1"}}, "mocked\n"});
    if (r.path() == "/forbidden") return RequestVerdict::deny("no forbidden paths");
    r.headers.set("X-Added-By-Hook", "yes");
    return RequestVerdict::forward();
  };
  hooks->on_response = [](const HttpRequest& req, HttpResponse& resp) { resp.headers.set("X-Seen-Path", req.path()); };
  o.http_hooks = hooks;
  EgressHarness h(o);
  h.set_destination(plain_->port());
  auto r = h.curl({"-i", http_url("upstream.test", "/echo")});
  EXPECT_NE(r.out.find("X-Seen-Path: /echo"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"X-Added-By-Hook\": \"yes\""), std::string::npos) << r.out;
  auto mock = fetch(h, {http_url("mock.test", "/anything")});
  EXPECT_EQ(mock.status, 200);
  EXPECT_EQ(mock.body, "mocked\n");
  auto denied = fetch(h, {http_url("upstream.test", "/forbidden")});
  EXPECT_EQ(denied.status, 403);
  EXPECT_EQ(denied.body, "gondolin: no forbidden paths\n");
}

TEST_F(EgressProxyTest, SilentUpstreamTimesOutWith504) {
  // A listener that never accepts: connects succeed, nothing ever answers.
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(l, 8), 0);
  socklen_t len = sizeof a;
  ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  UniqueFd listener(l);
  auto o = options();
  o.allow_all_hosts = true;
  o.upstream_response_timeout = std::chrono::milliseconds(1500);
  EgressHarness h(o);
  std::uint16_t port = ntohs(a.sin_port);
  h.set_destination(port);
  auto t0 = std::chrono::steady_clock::now();
  auto r = fetch(h, {"http://upstream.test:" + std::to_string(port) + "/"});
  EXPECT_EQ(r.status, 504);
  EXPECT_NE(r.body.find("sent nothing for 1 s"), std::string::npos) << r.body;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(EgressProxyTest, UpstreamConnectionCap) {
  auto o = options();
  o.allow_all_hosts = true;
  o.max_upstream_connections = 1;
  EgressHarness h(o);
  h.set_destination(plain_->port());
  const std::string host = "Host: upstream.test:" + std::to_string(plain_->port()) + "\r\n";
  // The first flow holds the only upstream connection (keep-alive, idle).
  UniqueFd first = h.raw_flow(net::FlowKind::Http);
  std::string req = "GET /bytes?n=1 HTTP/1.1\r\n" + host + "\r\n";
  ::send(first.get(), req.data(), req.size(), MSG_NOSIGNAL);
  EXPECT_NE(read_until(first.get(), "\r\n\r\nx").find("200 OK"), std::string::npos);
  UniqueFd second = h.raw_flow(net::FlowKind::Http);
  std::string reply = send_and_read_all(second.get(), req);
  EXPECT_EQ(reply.rfind("HTTP/1.1 503 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("too many upstream connections at once (limit 1)"), std::string::npos);
}

TEST_F(EgressProxyTest, SlowUploadIsNotMistakenForASilentUpstream) {
  auto o = options();
  o.allow_all_hosts = true;
  o.upstream_response_timeout = std::chrono::milliseconds(1000);
  EgressHarness h(o);
  h.set_destination(plain_->port());
  UniqueFd fd = h.raw_flow(net::FlowKind::Http);
  std::string head = "POST /upload HTTP/1.1\r\nHost: upstream.test:" + std::to_string(plain_->port()) +
                     "\r\nContent-Length: 30\r\nConnection: close\r\n\r\n";
  ::send(fd.get(), head.data(), head.size(), MSG_NOSIGNAL);
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
    ::send(fd.get(), "0123456789", 10, MSG_NOSIGNAL);
  }
  std::string reply = send_and_read_all(fd.get(), "");
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 ", 0), 0u) << reply;
  EXPECT_NE(reply.find("\"bytes\": 30"), std::string::npos) << reply;
}

TEST_F(EgressProxyTest, GuestConnectionCapClosesNewConnectionsAndLogs) {
  auto o = options();
  o.allow_all_hosts = true;
  o.max_guest_connections = 2;
  EgressHarness h(o);
  h.set_destination(plain_->port());
  const std::string host = "Host: upstream.test:" + std::to_string(plain_->port()) + "\r\n";
  // Two stalled connections (half a head each) hold both places.
  UniqueFd a = h.raw_flow(net::FlowKind::Http, "GET /echo HTTP/1.1\r\n");
  UniqueFd b = h.raw_flow(net::FlowKind::Tls);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  UniqueFd third = h.raw_flow(net::FlowKind::Http);
  std::string reply = send_and_read_all(third.get(), "GET /echo HTTP/1.1\r\n" + host + "\r\n", 3000);
  EXPECT_EQ(reply, "") << "closed without being served";
  auto lines = h.log_lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back()["rule"], "guest-connection-cap") << lines.back().dump();
  EXPECT_EQ(lines.back()["reason"], "too many guest connections at once (limit 2)");
  // A place frees up when a connection ends.
  a.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  UniqueFd fourth = h.raw_flow(net::FlowKind::Http);
  reply = send_and_read_all(fourth.get(), "GET /echo HTTP/1.1\r\n" + host + "Connection: close\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 ", 0), 0u) << reply;
}
