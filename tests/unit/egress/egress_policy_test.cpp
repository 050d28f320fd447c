#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include <unistd.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli/vm_flags.h"
#include "config/host_secret_rules.h"
#include "egress/http/http_parser.h"
#include "egress/policy/base64.h"
#include "egress/policy/egress_policy.h"
#include "egress/policy/internal_address.h"
#include "gondolin/error.h"

using namespace gondolin;
using namespace gondolin::egress;

namespace {

RequestHead head_of(std::string_view text) {
  HttpRequestParser p;
  auto r = p.parse(text);
  EXPECT_EQ(r.state, ParseState::Done) << r.error.reason;
  return r.head;
}

FlowFacts plain_flow(std::uint16_t port = 80) {
  FlowFacts f;
  f.flow_id = 7;
  f.port = port;
  return f;
}

std::string placeholder_of(const EgressPolicy& p, const std::string& name) {
  for (const auto& [k, v] : p.secrets().guest_env())
    if (k == name) return v;
  return {};
}

}  // namespace

TEST(HostPattern, WildcardsAndCase) {
  HostPattern exact("API.Example.com");
  EXPECT_TRUE(exact.matches("api.example.com"));
  EXPECT_FALSE(exact.matches("xapi.example.com"));
  HostPattern sub("*.example.com");
  EXPECT_TRUE(sub.matches("a.example.com"));
  EXPECT_TRUE(sub.matches("a.b.example.com"));
  EXPECT_FALSE(sub.matches("example.com"));
  EXPECT_FALSE(sub.matches("example.com.evil.net"));
  EXPECT_FALSE(sub.matches("aexample.com"));
  HostPattern mid("api-*.example.com");
  EXPECT_TRUE(mid.matches("api-eu.example.com"));
  EXPECT_FALSE(mid.matches("api.example.com"));
  EXPECT_TRUE(HostPattern("*").matches("anything.at.all"));
  EXPECT_THROW(HostPattern("exa mple.com"), Error);
  EXPECT_THROW(HostPattern(""), Error);
  EXPECT_THROW(HostPattern("a/b"), Error);
}

TEST(HostNames, NormalizeAndAuthority) {
  EXPECT_EQ(normalize_host("Example.COM.").value(), "example.com");
  EXPECT_EQ(normalize_host("[::1]").value(), "::1");
  EXPECT_FALSE(normalize_host("bad host"));
  EXPECT_FALSE(normalize_host("a..b"));
  EXPECT_FALSE(normalize_host(std::string(300, 'a')));
  auto a = parse_authority("Example.com:8080");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "example.com");
  EXPECT_EQ(a->port.value(), 8080);
  auto v6 = parse_authority("[2001:db8::1]:443");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_FALSE(parse_authority("example.com:"));
  EXPECT_FALSE(parse_authority("example.com:99999"));
  EXPECT_FALSE(parse_authority("example.com:80x"));
  EXPECT_FALSE(parse_authority("user@example.com"));
}

TEST(InternalAddress, RefusesInternalRanges) {
  auto kind = [](const char* a) { return internal_address_kind(boost::asio::ip::make_address(a)); };
  for (const char* a : {"127.0.0.1",
                        "127.8.9.10",
                        "10.1.2.3",
                        "172.16.0.1",
                        "172.31.255.255",
                        "192.168.1.1",
                        "169.254.169.254",
                        "100.64.0.1",
                        "100.127.255.254",
                        "0.0.0.0",
                        "0.1.2.3",
                        "224.0.0.1",
                        "239.255.255.250",
                        "255.255.255.255",
                        "240.0.0.1",
                        "::1",
                        "::",
                        "fc00::1",
                        "fd12:3456::1",
                        "fe80::1",
                        "ff02::1",
                        "::ffff:127.0.0.1",
                        "::ffff:10.0.0.1",
                        "::ffff:169.254.169.254",
                        "64:ff9b::a00:1",
                        "2002:c0a8:101::1",
                        "::127.0.0.1"})
    EXPECT_TRUE(kind(a).has_value()) << a;
  for (const char* a :
       {"1.1.1.1", "8.8.8.8", "172.32.0.1", "100.128.0.1", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"})
    EXPECT_FALSE(kind(a).has_value()) << a;
  EXPECT_EQ(kind("100.64.0.1").value(), "shared CGNAT (100.64.0.0/10)");
  EXPECT_EQ(kind("::ffff:10.0.0.1").value(), "IPv4-mapped private (10.0.0.0/8)");
}

TEST(EgressPolicy, AllowlistHitMissWildcard) {
  NetworkOptions o;
  o.allow_hosts = {"api.example.com", "*.github.com"};
  EgressPolicy p(o);
  std::string rule;
  EXPECT_FALSE(p.check_allowlist("api.example.com", rule));
  EXPECT_EQ(rule, "allow-host api.example.com");
  EXPECT_FALSE(p.check_allowlist("raw.github.com", rule));
  EXPECT_EQ(rule, "allow-host *.github.com");
  auto d = p.check_allowlist("github.com", rule);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->status, 403);
  EXPECT_EQ(d->rule, "not-in-allowlist");
  EXPECT_EQ(d->reason, "host \"github.com\" is not in the allowlist");
}

TEST(EgressPolicy, DenyAllByDefaultAllowAllOnRequest) {
  NetworkOptions o;
  std::string rule;
  EXPECT_TRUE(EgressPolicy(o).check_allowlist("example.com", rule));
  o.allow_all_hosts = true;
  EXPECT_FALSE(EgressPolicy(o).check_allowlist("example.com", rule));
  EXPECT_EQ(rule, "allow-all-hosts");
}

TEST(EgressPolicy, InterpretRefusesConnectAndMismatches) {
  NetworkOptions o;
  EgressPolicy p(o);
  auto connect =
      p.interpret(head_of("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"), plain_flow());
  ASSERT_TRUE(std::holds_alternative<Denial>(connect));
  EXPECT_EQ(std::get<Denial>(connect).rule, "connect-method");

  auto abs_ok = p.interpret(head_of("GET http://Example.com/a?b HTTP/1.1\r\nHost: example.com\r\n\r\n"), plain_flow());
  ASSERT_TRUE(std::holds_alternative<HttpRequest>(abs_ok));
  EXPECT_EQ(std::get<HttpRequest>(abs_ok).target, "/a?b");

  auto abs_bad = p.interpret(head_of("GET http://evil.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"), plain_flow());
  ASSERT_TRUE(std::holds_alternative<Denial>(abs_bad));
  EXPECT_EQ(std::get<Denial>(abs_bad).rule, "host-mismatch");

  FlowFacts tls = plain_flow(443);
  tls.tls = true;
  tls.sni = "a.example.com";
  auto sni = p.interpret(head_of("GET / HTTP/1.1\r\nHost: b.example.com\r\n\r\n"), tls);
  ASSERT_TRUE(std::holds_alternative<Denial>(sni));
  EXPECT_EQ(std::get<Denial>(sni).rule, "sni-mismatch");
  auto sni_ok = p.interpret(head_of("GET / HTTP/1.1\r\nHost: A.example.com:443\r\n\r\n"), tls);
  EXPECT_TRUE(std::holds_alternative<HttpRequest>(sni_ok));

  FlowFacts named = plain_flow();
  named.dns_name = "a.example.com";
  auto dns = p.interpret(head_of("GET / HTTP/1.1\r\nHost: b.example.com\r\n\r\n"), named);
  ASSERT_TRUE(std::holds_alternative<Denial>(dns));
  EXPECT_EQ(std::get<Denial>(dns).rule, "host-mismatch");

  auto port = p.interpret(head_of("GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n"), plain_flow(80));
  ASSERT_TRUE(std::holds_alternative<Denial>(port));
}

TEST(EgressPolicy, InterpretDropsHopByHopHeaders) {
  EgressPolicy p(NetworkOptions{});
  auto r = p.interpret(head_of("GET / HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret-Hop\r\nX-Secret-Hop: 1\r\n"
                               "Keep-Alive: 5\r\nTE: trailers\r\nAccept: */*\r\n\r\n"),
                       plain_flow());
  ASSERT_TRUE(std::holds_alternative<HttpRequest>(r));
  const auto& h = std::get<HttpRequest>(r).headers;
  EXPECT_EQ(h.list().size(), 1u);
  EXPECT_EQ(h.get("accept").value(), "*/*");
}

TEST(EgressPolicy, WebsocketsCanBeDisabled) {
  NetworkOptions o;
  o.websockets = false;
  auto r = EgressPolicy(o).interpret(
      head_of("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"), plain_flow());
  ASSERT_TRUE(std::holds_alternative<Denial>(r));
  EXPECT_EQ(std::get<Denial>(r).rule, "websockets-disabled");
}

TEST(SecretStore, SubstitutesBearerAndBasicForAllowedHosts) {
  NetworkOptions o;
  o.allow_all_hosts = true;
  o.secrets = {HostSecret{"TOKEN", {"api.example.com"}, "s3cr3t", {}, {}, {}, {}},
               HostSecret{"PASS", {"*.example.com"}, "p@ss:word", {}, {}, {}, {}}};
  EgressPolicy p(o);
  std::string token = placeholder_of(p, "TOKEN"), pass = placeholder_of(p, "PASS");
  ASSERT_EQ(token.rfind("GONDOLIN_SECRET_", 0), 0u);
  EXPECT_EQ(token.size(), std::string("GONDOLIN_SECRET_").size() + 32);
  EXPECT_NE(token, pass);

  HttpRequest r;
  r.host = "api.example.com";
  r.target = "/x?t=" + token;
  r.headers.add("Authorization", "Bearer " + token);
  r.headers.add("Proxy-Authorization", "Basic " + base64_encode("user:" + pass));
  r.headers.add("X-Both", token + "/" + token);
  auto a = p.authorize(r);
  ASSERT_TRUE(std::holds_alternative<Authorization>(a));
  EXPECT_EQ(r.headers.get("authorization").value(), "Bearer s3cr3t");
  EXPECT_EQ(base64_decode(r.headers.get("proxy-authorization")->substr(6)).value(), "user:p@ss:word");
  EXPECT_EQ(r.headers.get("x-both").value(), "s3cr3t/s3cr3t");
  EXPECT_EQ(r.target, "/x?t=" + token) << "query untouched without secrets_in_query";
  auto names = std::get<Authorization>(a).secrets;
  EXPECT_EQ(names, (std::vector<std::string>{"TOKEN", "PASS"}));
}

TEST(SecretStore, PlaceholderToForeignHostBlocks) {
  NetworkOptions o;
  o.allow_all_hosts = true;
  o.secrets = {HostSecret{"TOKEN", {"api.example.com"}, "s3cr3t", {}, {}, {}, {}}};
  EgressPolicy p(o);
  std::string token = placeholder_of(p, "TOKEN");
  HttpRequest r;
  r.host = "evil.example.net";
  r.target = "/";
  r.headers.add("Authorization", "Basic " + base64_encode(token + ":x"));
  auto a = p.authorize(r);
  ASSERT_TRUE(std::holds_alternative<Denial>(a));
  EXPECT_EQ(std::get<Denial>(a).rule, "secret-host");
  EXPECT_EQ(std::get<Denial>(a).reason, "secret TOKEN may not be sent to host \"evil.example.net\"");
  EXPECT_NE(r.headers.get("authorization")->find("Basic "), std::string::npos) << "request left unchanged";
}

TEST(SecretStore, QueryOnlyWithFlagAndPercentEncoded) {
  NetworkOptions o;
  o.allow_all_hosts = true;
  o.secrets_in_query = true;
  o.secrets = {HostSecret{"KEY", {"api.example.com"}, "a&b=c d", {}, {}, {}, {}}};
  EgressPolicy p(o);
  std::string key = placeholder_of(p, "KEY");
  HttpRequest r;
  r.host = "api.example.com";
  r.target = "/p/" + key + "?key=" + key;
  auto a = p.authorize(r);
  ASSERT_TRUE(std::holds_alternative<Authorization>(a));
  EXPECT_EQ(r.target, "/p/" + key + "?key=a%26b%3Dc%20d") << "path never substituted";
}

TEST(SecretStore, RejectsBadSecrets) {
  EXPECT_THROW(SecretStore({HostSecret{"1BAD", {"h"}, "v", {}, {}, {}, {}}}), Error);
  EXPECT_THROW(SecretStore({HostSecret{"OK", {}, "v", {}, {}, {}, {}}}), Error);
  EXPECT_THROW(SecretStore({HostSecret{"OK", {"h"}, "a\r\nX: y", {}, {}, {}, {}}}), Error);
  EXPECT_THROW(
      SecretStore({HostSecret{"OK", {"h"}, "v", {}, {}, {}, {}}, HostSecret{"OK", {"h"}, "w", {}, {}, {}, {}}}), Error);
}

TEST(HostSecretFlag, Parses) {
  auto s = config::parse_host_secret("TOKEN@api.example.com,*.example.org=abc=def@x");
  EXPECT_EQ(s.name, "TOKEN");
  EXPECT_EQ(s.hosts, (std::vector<std::string>{"api.example.com", "*.example.org"}));
  EXPECT_EQ(s.value, "abc=def@x");
  ::setenv("GONDOLIN_TEST_SECRET_FROM_ENV", "from-env", 1);
  EXPECT_EQ(config::parse_host_secret("GONDOLIN_TEST_SECRET_FROM_ENV@h").value, "from-env");
  ::unsetenv("GONDOLIN_TEST_SECRET_FROM_ENV");
  EXPECT_THROW(config::parse_host_secret("GONDOLIN_TEST_SECRET_FROM_ENV@h"), Error);
  EXPECT_THROW(config::parse_host_secret("NOHOST"), Error);
  EXPECT_THROW(config::parse_host_secret("A@h,,b=v"), Error);
}

// Ways to hand over a value that never shows in `ps`: a file, or one line of stdin.
TEST(HostSecretFlag, ValueFromAFileOrOneLineOfStdin) {
  auto dir = std::filesystem::temp_directory_path() / ("gondolin-secret-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "token") << "from-file\n";
  EXPECT_EQ(config::parse_host_secret("T@h=@" + (dir / "token").string()).value, "from-file");
  try {
    config::parse_host_secret("T@h=@" + (dir / "missing").string());
    ADD_FAILURE() << "a missing file was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const std::string input = "line-one\nrest stays for -i\n";
  ASSERT_EQ(::write(fds[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  ::close(fds[1]);
  const int saved = ::dup(STDIN_FILENO);
  ::dup2(fds[0], STDIN_FILENO);
  EXPECT_EQ(config::parse_host_secret("T@h=@-").value, "line-one");
  char rest[64] = {};
  EXPECT_EQ(::read(STDIN_FILENO, rest, sizeof rest - 1), 18);
  EXPECT_STREQ(rest, "rest stays for -i\n");
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
  ::close(fds[0]);
  std::filesystem::remove_all(dir);
}

TEST(PolicyFile, EqualsFlagsAndRejectsUnknownKeys) {
  auto dir = std::filesystem::temp_directory_path() / ("gondolin-policy-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& text) {
    std::ofstream(dir / "p.json") << text;
    return (dir / "p.json").string();
  };
  NetworkOptions o;
  ::setenv("GONDOLIN_TEST_POLICY_TOKEN", "tok", 1);
  load_network_policy_file(write(R"({"allow_hosts": ["a.example.com", "*.b.example.com"], "secrets_in_query": true,
      "websockets": false, "secrets": {"GONDOLIN_TEST_POLICY_TOKEN": {"hosts": ["a.example.com"]},
      "OTHER": {"hosts": ["x"], "value": "v"}}})"),
                           o);
  EXPECT_EQ(o.allow_hosts.size(), 2u);
  EXPECT_TRUE(o.secrets_in_query);
  EXPECT_FALSE(o.websockets);
  ASSERT_EQ(o.secrets.size(), 2u);
  EXPECT_EQ(o.secrets[0].value, "tok");

  auto error_of = [&](const std::string& text) {
    NetworkOptions n;
    try {
      load_network_policy_file(write(text), n);
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Policy);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of(R"({"allow_host": ["x"]})").find("unknown key \"allow_host\""), std::string::npos);
  EXPECT_NE(error_of(R"({"allow_hosts": "x"})").find("\"allow_hosts\" must be an array"), std::string::npos);
  EXPECT_NE(error_of(R"({"secrets": {"T": {"hosts": ["x"], "valeu": "v"}}})").find("\"secrets.T.valeu\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"allow_all_hosts": "yes"})").find("true or false"), std::string::npos);
  EXPECT_NE(error_of("{not json").find("invalid JSON"), std::string::npos);
  // Found by fuzz_policy: a number too large for a double is out_of_range,
  // not parse_error, and used to escape as an uncaught exception.
  EXPECT_NE(error_of("2222222232223E22222").find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"allow_all_hosts": 1E999})").find("invalid JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"secrets": {"UNSET_GONDOLIN_VAR": {"hosts": ["x"]}}})").find("is not set"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Base64, RoundTripAndStrictness) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "user:pass"})
    EXPECT_EQ(base64_decode(base64_encode(s)).value(), s);
  EXPECT_EQ(base64_encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_FALSE(base64_decode("dXNl*jpwYXNz"));
  EXPECT_FALSE(base64_decode("a"));
}
