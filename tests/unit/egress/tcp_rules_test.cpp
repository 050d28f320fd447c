// --tcp-map, --listen and --tcp-idle-timeout: parsing, validation, rule
// lookup, the policy file keys, and what the CLI makes of them (per-host DNS
// turned on, conflicts, flags merged with the file).
#include <gtest/gtest.h>

#include <fstream>

#include "cli/vm_flags.h"
#include "config/tcp_rules.h"
#include "gondolin/error.h"

using namespace gondolin;
using config::parse_ingress;
using config::parse_tcp_map;

namespace {

// The one-line message of the Error `f` throws ("" if none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

VmOptions cli_options(std::vector<std::string> tcp_maps, std::vector<std::string> listen = {},
                      std::string host_mapping = "", std::string dns = "") {
  cli::VmFlags f;
  f.tcp_maps = std::move(tcp_maps);
  f.listen = std::move(listen);
  f.net.host_mapping = std::move(host_mapping);
  f.net.dns = std::move(dns);
  return f.to_options();
}

}  // namespace

TEST(TcpMapRules, ParsesNamePortAndUpstream) {
  TcpMap m = parse_tcp_map("--tcp-map", "Redis.Internal.=127.0.0.1:6379");
  EXPECT_EQ(m.guest_host, "redis.internal");
  EXPECT_EQ(m.guest_port, 0);
  EXPECT_EQ(m.upstream_host, "127.0.0.1");
  EXPECT_EQ(m.upstream_port, 6379);

  TcpMap p = parse_tcp_map("--tcp-map", "db:5432=db.example.com:15432");
  EXPECT_EQ(p.guest_host, "db");
  EXPECT_EQ(p.guest_port, 5432);
  EXPECT_EQ(p.upstream_host, "db.example.com");
  EXPECT_EQ(p.upstream_port, 15432);

  TcpMap v6 = parse_tcp_map("--tcp-map", "cache=[::1]:11211");
  EXPECT_EQ(v6.upstream_host, "::1");
  EXPECT_EQ(config::describe(v6), "cache=[::1]:11211");
  EXPECT_EQ(config::describe(p), "db:5432=db.example.com:15432");
}

TEST(TcpMapRules, BadSpecsNameTheFlagAndTheProblem) {
  struct Case {
    const char* spec;
    const char* why;
  };
  for (const Case& c : std::vector<Case>{
           {"redis", "expected GUEST_HOST[:PORT]=UPSTREAM_HOST:PORT"},
           {"=127.0.0.1:1", "missing host name"},
           {"redis=127.0.0.1", "the upstream must be HOST:PORT"},
           {"redis=127.0.0.1:0", "the upstream port must be 1..65535"},
           {"redis=127.0.0.1:70000", "the upstream port must be 1..65535"},
           {"redis=127.0.0.1:x", "the upstream port must be 1..65535"},
           {"redis:0=127.0.0.1:1", "the guest port must be 1..65535"},
           {"redis:abc=127.0.0.1:1", "the guest port must be 1..65535"},
           {"10.0.0.1=127.0.0.1:1", "not an address"},
           {"localhost=127.0.0.1:1", "localhost never leaves the guest"},
           {"a..b=127.0.0.1:1", "empty label"},
           {"re dis=127.0.0.1:1", "may only contain"},
           {"redis=bad host:1", "host name or an IP address"},
           {"redis=:1", "missing upstream host"},
       }) {
    std::string msg = error_of([&] { parse_tcp_map("--tcp-map", c.spec); });
    EXPECT_EQ(msg.rfind(std::string("invalid --tcp-map '") + c.spec + "': ", 0), 0u) << c.spec << " -> " << msg;
    EXPECT_NE(msg.find(c.why), std::string::npos) << c.spec << " -> " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(TcpMapRules, PortSpecificRuleWinsOverPortless) {
  std::vector<TcpMap> maps{parse_tcp_map("f", "db=127.0.0.1:6379"), parse_tcp_map("f", "db:5432=127.0.0.1:15432"),
                           parse_tcp_map("f", "other:80=127.0.0.1:8080")};
  ASSERT_NE(config::find_tcp_map(maps, "db", 5432), nullptr);
  EXPECT_EQ(config::find_tcp_map(maps, "db", 5432)->upstream_port, 15432);
  EXPECT_EQ(config::find_tcp_map(maps, "DB.", 6379)->upstream_port, 6379);
  EXPECT_EQ(config::find_tcp_map(maps, "db", 1)->upstream_port, 6379);
  EXPECT_EQ(config::find_tcp_map(maps, "other", 80)->upstream_port, 8080);
  EXPECT_EQ(config::find_tcp_map(maps, "other", 81), nullptr);
  EXPECT_EQ(config::find_tcp_map(maps, "db.example", 5432), nullptr);
}

TEST(TcpMapRules, DuplicatesAreRejected) {
  std::vector<TcpMap> maps{parse_tcp_map("f", "db=127.0.0.1:1"), parse_tcp_map("f", "DB=127.0.0.1:2")};
  EXPECT_NE(error_of([&] { config::validate_tcp_maps(maps); }).find("db is mapped twice"), std::string::npos);
  maps = {parse_tcp_map("f", "db:1=127.0.0.1:1"), parse_tcp_map("f", "db=127.0.0.1:2")};
  EXPECT_NO_THROW(config::validate_tcp_maps(maps));
  // The API path gets the same checks as the flag.
  maps = {TcpMap{"Upper", 0, "127.0.0.1", 1}};
  EXPECT_THROW(config::validate_tcp_maps(maps), Error);
  maps = {TcpMap{"db", 0, "127.0.0.1", 0}};
  EXPECT_THROW(config::validate_tcp_maps(maps), Error);
}

TEST(IngressRules, ParsesTheThreeForms) {
  Ingress a = parse_ingress("--listen", "8000");
  EXPECT_EQ(a.host_address, "127.0.0.1");
  EXPECT_EQ(a.host_port, 8000);
  EXPECT_EQ(a.guest_port, 8000);
  Ingress b = parse_ingress("--listen", "18000:8000");
  EXPECT_EQ(b.host_address, "127.0.0.1");
  EXPECT_EQ(b.host_port, 18000);
  EXPECT_EQ(b.guest_port, 8000);
  Ingress c = parse_ingress("--listen", "0.0.0.0:8080");
  EXPECT_EQ(c.host_address, "0.0.0.0");
  EXPECT_EQ(c.host_port, 8080);
  EXPECT_EQ(c.guest_port, 8080);
  Ingress d = parse_ingress("--listen", "127.0.0.2:8080:80");
  EXPECT_EQ(d.host_address, "127.0.0.2");
  EXPECT_EQ(d.guest_port, 80);
  Ingress e = parse_ingress("--listen", "[::1]:8080:80");
  EXPECT_EQ(e.host_address, "::1");
  EXPECT_EQ(e.host_port, 8080);
  EXPECT_EQ(config::describe(e), "[::1]:8080:80");
  EXPECT_EQ(parse_ingress("--listen", "localhost:9000").host_address, "127.0.0.1");
}

TEST(IngressRules, BadSpecsNameTheFlag) {
  for (const char* bad :
       {"", "0", "65536", "x", "8000:", "8000:0", "1:2:3:4", "example.com:80", "[::1]8080", "300.1.1.1:80", ":80"}) {
    std::string msg = error_of([&] { parse_ingress("--listen", bad); });
    EXPECT_EQ(msg.rfind(std::string("invalid --listen '") + bad + "': ", 0), 0u) << bad << " -> " << msg;
  }
  std::vector<Ingress> twice{parse_ingress("f", "8000"), parse_ingress("f", "127.0.0.1:8000:9000")};
  EXPECT_NE(error_of([&] { config::validate_ingress(twice); }).find("listened on twice"), std::string::npos);
  std::vector<Ingress> distinct{parse_ingress("f", "8000"), parse_ingress("f", "127.0.0.2:8000")};
  EXPECT_NO_THROW(config::validate_ingress(distinct));
}

TEST(TcpMapCli, TurnsOnPerHostDnsAndRejectsConflicts) {
  VmOptions o = cli_options({"redis=127.0.0.1:6379", "redis:6380=127.0.0.1:16380"}, {"8000", "9000:90"});
  EXPECT_EQ(o.network.host_mapping, SyntheticHostMapping::PerHost);
  ASSERT_EQ(o.network.tcp_maps.size(), 2u);
  ASSERT_EQ(o.network.ingress.size(), 2u);
  EXPECT_EQ(o.network.ingress[1].guest_port, 90);
  EXPECT_EQ(cli_options({"redis=127.0.0.1:6379"}, {}, "per-host").network.host_mapping, SyntheticHostMapping::PerHost);
  EXPECT_NE(error_of([] {
              cli_options({"redis=127.0.0.1:6379"}, {}, "single");
            }).find("--tcp-map needs --dns-synthetic-host-mapping per-host"),
            std::string::npos);
  EXPECT_NE(
      error_of([] { cli_options({"redis=127.0.0.1:6379"}, {}, "", "trusted"); }).find("--tcp-map needs synthetic DNS"),
      std::string::npos);
  EXPECT_NE(error_of([] { cli_options({"a=127.0.0.1:1", "A.=127.0.0.1:2"}); }).find("mapped twice"), std::string::npos);
  EXPECT_NE(error_of([] { cli_options({}, {"8000", "8000:80"}); }).find("listened on twice"), std::string::npos);
  // Without --tcp-map nothing changes.
  EXPECT_EQ(cli_options({}).network.host_mapping, SyntheticHostMapping::Single);
}

TEST(TcpMapPolicyFile, TcpMapKeyTakesTheSameRules) {
  const std::string path = ::testing::TempDir() + "/tcp_map_policy.json";
  { std::ofstream(path) << R"({"tcp_map": ["redis=127.0.0.1:6379", "pg:5432=127.0.0.1:15432"]})"; }
  NetworkOptions o;
  load_network_policy_file(path, o);
  ASSERT_EQ(o.tcp_maps.size(), 2u);
  EXPECT_EQ(o.tcp_maps[1].guest_port, 5432);
  { std::ofstream(path) << R"({"tcp_map": ["redis=127.0.0.1"]})"; }
  NetworkOptions bad;
  std::string msg = error_of([&] { load_network_policy_file(path, bad); });
  EXPECT_NE(msg.find("policy file " + path + ": invalid \"tcp_map\" entry 'redis=127.0.0.1'"), std::string::npos)
      << msg;
  { std::ofstream(path) << R"({"tcp_map": "redis=127.0.0.1:1"})"; }
  EXPECT_NE(error_of([&] { load_network_policy_file(path, bad); }).find("\"tcp_map\" must be an array of strings"),
            std::string::npos);
}

namespace {

std::string write_policy(const std::string& name, const std::string& json) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << json;
  return path;
}

}  // namespace

TEST(IngressPolicyFile, ListenKeyTakesTheSameRules) {
  const std::string path =
      write_policy("listen_policy.json", R"({"listen": ["8000", "127.0.0.1:8080:80", "[::1]:9000"]})");
  NetworkOptions o;
  load_network_policy_file(path, o);
  ASSERT_EQ(o.ingress.size(), 3u);
  EXPECT_EQ(config::describe(o.ingress[0]), "127.0.0.1:8000:8000");
  EXPECT_EQ(config::describe(o.ingress[1]), "127.0.0.1:8080:80");
  EXPECT_EQ(config::describe(o.ingress[2]), "[::1]:9000:9000");

  for (const char* bad : {"8000:", "0", "example.com:80", "1:2:3:4", ""}) {
    write_policy("listen_policy.json", std::string(R"({"listen": ["8000", ")") + bad + R"("]})");
    NetworkOptions b;
    std::string msg = error_of([&] { load_network_policy_file(path, b); });
    EXPECT_EQ(msg.rfind("policy file " + path + ": invalid \"listen\" entry '" + bad + "': ", 0), 0u)
        << bad << " -> " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_TRUE(b.ingress.empty()) << "a failed file must leave the options alone";
  }
  for (const char* bad : {R"({"listen": "8000"})", R"({"listen": [8000]})"}) {
    write_policy("listen_policy.json", bad);
    NetworkOptions b;
    EXPECT_NE(error_of([&] { load_network_policy_file(path, b); }).find("\"listen\" must be an array of strings"),
              std::string::npos)
        << bad;
  }
}

TEST(IngressPolicyFile, MergesWithListenFlagsLikeTcpMap) {
  cli::VmFlags f;
  f.policy_file = write_policy("listen_merge.json", R"({"listen": ["8000"], "tcp_map": ["db=127.0.0.1:5432"]})");
  f.listen = {"9000:90"};
  f.tcp_maps = {"cache=127.0.0.1:6379"};
  VmOptions o = f.to_options();
  ASSERT_EQ(o.network.ingress.size(), 2u);  // the file's first, then the flags'
  EXPECT_EQ(o.network.ingress[0].host_port, 8000);
  EXPECT_EQ(o.network.ingress[1].host_port, 9000);
  EXPECT_EQ(o.network.ingress[1].guest_port, 90);
  ASSERT_EQ(o.network.tcp_maps.size(), 2u);

  f.listen = {"8000:80"};  // the file already listens on 8000
  EXPECT_NE(error_of([&] { f.to_options(); }).find("host port 8000 is listened on twice"), std::string::npos);
  f.policy_file = write_policy("listen_only.json", R"({"listen": ["8000"]})");
  f.listen.clear();
  f.tcp_maps.clear();
  f.net.no_network = true;
  EXPECT_NE(error_of([&] { f.to_options(); }).find("the policy file's \"listen\") has no effect with --no-network"),
            std::string::npos);
}

TEST(TcpIdleTimeoutOption, ParsesSecondsAndRejectsTheRest) {
  using std::chrono::milliseconds;
  EXPECT_EQ(NetworkOptions().tcp_idle_timeout, std::chrono::minutes(10));
  EXPECT_EQ(config::parse_tcp_idle_timeout("--tcp-idle-timeout", "0"), milliseconds(0));
  EXPECT_EQ(config::parse_tcp_idle_timeout("--tcp-idle-timeout", "0.2"), milliseconds(200));
  EXPECT_EQ(config::parse_tcp_idle_timeout("--tcp-idle-timeout", "0.0001"), milliseconds(1));  // never 0 by rounding
  EXPECT_EQ(config::parse_tcp_idle_timeout("--tcp-idle-timeout", "3600"), milliseconds(3600000));
  EXPECT_EQ(config::parse_tcp_idle_timeout("--tcp-idle-timeout", "604800"), std::chrono::hours(24 * 7));
  for (const char* bad : {"", "abc", "-1", "10s", " 5", "604801", "1e300", "nan", "inf"}) {
    std::string msg = error_of([&] { config::parse_tcp_idle_timeout("--tcp-idle-timeout", bad); });
    EXPECT_EQ(msg.rfind(std::string("invalid --tcp-idle-timeout '") + bad + "': ", 0), 0u) << bad << " -> " << msg;
  }
  // The API path.
  EXPECT_NO_THROW(config::validate_tcp_idle_timeout(milliseconds(0)));
  EXPECT_THROW(config::validate_tcp_idle_timeout(milliseconds(-1)), Error);
  EXPECT_THROW(config::validate_tcp_idle_timeout(std::chrono::hours(24 * 8)), Error);
}

TEST(TcpIdleTimeoutOption, PolicyFileKeyAndFlagOverride) {
  const std::string path = write_policy("idle_policy.json", R"({"tcp_idle_timeout": 0.5})");
  NetworkOptions o;
  load_network_policy_file(path, o);
  EXPECT_EQ(o.tcp_idle_timeout, std::chrono::milliseconds(500));

  cli::VmFlags f;
  f.policy_file = write_policy("idle_policy.json", R"({"tcp_idle_timeout": 5})");
  EXPECT_EQ(f.to_options().network.tcp_idle_timeout, std::chrono::seconds(5));
  f.tcp_idle_timeout = "7";  // a flag wins over the file, as --egress-log does
  EXPECT_EQ(f.to_options().network.tcp_idle_timeout, std::chrono::seconds(7));
  f.policy_file.clear();
  f.tcp_idle_timeout = "soon";
  EXPECT_NE(error_of([&] { f.to_options(); }).find("invalid --tcp-idle-timeout 'soon': expected a number of seconds"),
            std::string::npos);

  write_policy("idle_policy.json", R"({"tcp_idle_timeout": "600"})");
  EXPECT_NE(
      error_of([&] { load_network_policy_file(path, o); }).find("\"tcp_idle_timeout\" must be a number of seconds"),
      std::string::npos);
  write_policy("idle_policy.json", R"({"tcp_idle_timeout": -1})");
  std::string msg = error_of([&] { load_network_policy_file(path, o); });
  EXPECT_NE(msg.find("policy file " + path + ": invalid \"tcp_idle_timeout\" '-1': the idle timeout must be 0 (never)"),
            std::string::npos)
      << msg;
}
