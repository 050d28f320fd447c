// Policy that fits real use, from a real guest against a loopback HTTPS
// server: README's secret example as written, live changes to a running
// session (API and `gondolin policy`), scoped and revoked secrets, and
// internal hosts allowed on purpose.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "config/test_knobs.h"
#include "egress_harness.h"
#include "gondolin/error.h"
#include "gondolin/session.h"
#include "gondolin/vm.h"
#include "sha256_hex.h"
#include "test_support.h"
#include "util/files.h"

namespace gondolin::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kHost = "api.github.com";  // README's example host, pinned to loopback
constexpr const char* kSecret = "ghp-live-policy-value";
// What the upstream's /digest shows for the header the host sent.
const std::string kBearerDigest = sha256_hex(std::string("Bearer ") + kSecret);

CliOptions with_env(const std::string& key, const std::string& value) {
  CliOptions o;
  o.env[key] = value;
  return o;
}

CliOptions with_stdin(std::string data) {
  CliOptions o;
  o.stdin_data = std::move(data);
  return o;
}

class LivePolicy : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = egress::testing::TestPki::create(dir_.path(), {kHost});
    upstream_ = std::make_unique<egress::testing::PythonUpstream>(pki_.server_cert, pki_.server_key);
  }

  std::string url(const std::string& path) const {
    return "https://" + std::string(kHost) + ":" + std::to_string(upstream_->port()) + path;
  }
  std::string curl_status(const std::string& path, const std::string& header = {}) const {
    return "curl -sS -o /dev/null -w '%{http_code}\\n' " + (header.empty() ? "" : "-H '" + header + "' ") + url(path);
  }
  VmOptions options() const {
    VmOptions o;
    o.network.egress_log_path = (dir_.path() / "egress.log").string();
    config::test_knobs(o.network).loopback_hosts = {kHost};
    config::test_knobs(o.network).extra_upstream_ca_file = pki_.ca_cert.string();
    return o;
  }
  std::vector<nlohmann::json> log_lines() const {
    std::vector<nlohmann::json> out;
    std::string text = read_file(dir_.path() / "egress.log");
    for (std::size_t start = 0, end; start < text.size(); start = end + 1) {
      end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      if (end > start) out.push_back(nlohmann::json::parse(text.substr(start, end - start)));
    }
    return out;
  }

  TempDir dir_;
  egress::testing::TestPki pki_;
  std::unique_ptr<egress::testing::PythonUpstream> upstream_;
};

TEST_F(LivePolicy, ReadmeSecretExampleWorksAsWritten) {
  // README: gondolin exec --host-secret GITHUB_TOKEN@api.github.com -- sh -c
  //   'curl -H "Authorization: Bearer $GITHUB_TOKEN" https://api.github.com/user'
  // (plus the test-only switches that stand loopback in for the host).
  auto r = run_gondolin({"exec", "--host-secret", "GITHUB_TOKEN@api.github.com", "--test-loopback-host", kHost,
                         "--upstream-ca", pki_.ca_cert.string(), "--", "sh", "-c",
                         "curl -sSf -H \"Authorization: Bearer $GITHUB_TOKEN\" " + url("/digest") + " | grep -c " +
                             kBearerDigest + "; " + curl_status("/echo")},
                        with_env("GITHUB_TOKEN", kSecret));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1\n403\n") << "the placeholder opens its host; a bare request does not";
}

TEST_F(LivePolicy, AllowDenyAndKeepAliveFlowsCloseOnChange) {
  Vm vm = Vm::create(options());
  EXPECT_EQ(vm.exec(Command::shell(curl_status("/echo"))).stdout_data, "403\n");
  vm.change_policy(PolicyChange::allow_host(kHost));
  EXPECT_EQ(vm.exec(Command::shell(curl_status("/echo"))).stdout_data, "200\n");
  EXPECT_EQ(vm.policy().allow_hosts, std::vector<std::string>{kHost});

  // One keep-alive HTTPS connection: a request, then the host is denied,
  // then a second request on the same connection.
  const std::string script =
      "import http.client, os, time\n"
      "c = http.client.HTTPSConnection('" +
      std::string(kHost) + "', " + std::to_string(upstream_->port()) +
      ")\n"
      "c.request('GET', '/echo'); r = c.getresponse(); r.read(); print(r.status, flush=True)\n"
      "while not os.path.exists('/tmp/go'): time.sleep(0.05)\n"
      "try:\n"
      "    c.request('GET', '/echo'); r = c.getresponse(); r.read(); print(r.status, flush=True)\n"
      "except Exception as e:\n"
      "    print('closed', flush=True)\n";
  Process p = vm.spawn(Command::argv({"python3", "-c", script}));
  std::string out;
  while (out.find('\n') == std::string::npos)
    if (auto chunk = p.read()) out += chunk->data;
  EXPECT_EQ(out, "200\n");
  vm.change_policy(PolicyChange::deny_host(kHost));
  vm.write_file("/tmp/go", "");
  while (auto chunk = p.read()) out += chunk->data;
  EXPECT_EQ(p.wait().exit_code, 0);
  EXPECT_NE(out.substr(4), "200\n") << out;
  EXPECT_EQ(vm.exec(Command::shell(curl_status("/echo"))).stdout_data, "403\n");

  bool closed = false, logged_change = false;
  for (const auto& line : log_lines()) {
    closed = closed || (line.value("rule", "") == "policy-change" && line.value("event", "") == "close");
    logged_change = logged_change || (line.value("kind", "") == "policy" &&
                                      line.value("change", "") == std::string("deny-host ") + kHost &&
                                      line.value("uid", -1) == static_cast<int>(::getuid()));
  }
  EXPECT_TRUE(closed);
  EXPECT_TRUE(logged_change);
  EXPECT_THROW(vm.change_policy(PolicyChange::allow_host("bad host")), Error);
}

TEST_F(LivePolicy, SecretsSetScopedAndRevokedWhileRunning) {
  Vm vm = Vm::create(options());
  HostSecret s;
  s.name = "TOKEN";
  s.hosts = {kHost};
  s.value = kSecret;
  s.methods = {"GET"};
  s.path_prefixes = {"/digest"};
  vm.change_policy(PolicyChange::set_secret(s));
  auto placeholder = vm.exec(Command::shell("printf %s \"$TOKEN\"")).stdout_data;
  ASSERT_EQ(placeholder.rfind("GONDOLIN_SECRET_", 0), 0u) << placeholder;
  const std::string bearer = "Authorization: Bearer " + placeholder;
  auto used = vm.exec(Command::shell("curl -sSf -H '" + bearer + "' " + url("/digest") + " | grep -c " + kBearerDigest +
                                     "; " + "curl -sS -X POST -w '\\n%{http_code}\\n' -H '" + bearer + "' " +
                                     url("/echo") + "; " + curl_status("/bytes?n=1", bearer)));
  EXPECT_EQ(used.stdout_data.substr(0, 2), "1\n") << used.stdout_data;
  EXPECT_NE(used.stdout_data.find("outside its scope)\n\n403\n"), std::string::npos) << used.stdout_data;
  EXPECT_EQ(used.stdout_data.substr(used.stdout_data.size() - 4), "403\n") << used.stdout_data;

  vm.change_policy(PolicyChange::remove_secret("TOKEN"));
  auto revoked = vm.exec(Command::shell("curl -sS -w '\\n%{http_code}\\n' -H '" + bearer + "' " + url("/echo") +
                                        "; printf '[%s]' \"$TOKEN\""));
  EXPECT_EQ(revoked.stdout_data, "gondolin: secret TOKEN was revoked\n\n403\n[]") << revoked.stdout_data;
  EXPECT_EQ(vm.policy().revoked_secrets, std::vector<std::string>{"TOKEN"});
  EXPECT_EQ(read_file(dir_.path() / "egress.log").find(kSecret), std::string::npos);

  // A resumed copy keeps refusing the placeholder its processes may hold.
  vm.snapshot(dir_.path() / "snap");
  Vm resumed = Vm::resume((dir_.path() / "snap").string(), options());
  EXPECT_EQ(resumed.policy().revoked_secrets, std::vector<std::string>{"TOKEN"});
  auto after = resumed.exec(Command::shell("curl -sS -w '\\n%{http_code}\\n' -H '" + bearer + "' " + url("/echo")));
  EXPECT_EQ(after.stdout_data, "gondolin: secret TOKEN was revoked\n\n403\n") << after.stderr_data;
}

TEST_F(LivePolicy, ShapedPlaceholdersPassClientKeyChecksAndSurviveAReplace) {
  const fs::path policy = dir_.path() / "policy.json";
  write_file_atomic(policy, std::string(R"({"secrets": {"OPENAI_API_KEY": {"hosts": [")") + kHost +
                                R"("], "value": ")" + kSecret +
                                R"(", "placeholder_prefix": "sk-", "placeholder_length": 48,
                         "placeholder_alphabet": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"}}})");
  // A client that checks the key's format before sending it, as SDKs do.
  const std::string check =
      "python3 -c 'import os,re,sys; sys.exit(0 if re.fullmatch(r\"sk-[A-Za-z0-9]{48}\", "
      "os.environ[\"OPENAI_API_KEY\"]) else 1)' && echo shaped; ";
  auto r = run_gondolin({"exec", "--policy", policy.string(), "--test-loopback-host", kHost, "--upstream-ca",
                         pki_.ca_cert.string(), "--", "sh", "-c",
                         check + "curl -sSf -H \"Authorization: Bearer $OPENAI_API_KEY\" " + url("/digest") +
                             " | grep -c " + kBearerDigest});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "shaped\n1\n");

  // Replacing a shaped secret live keeps the placeholder the guest holds.
  Vm vm = Vm::create(options());
  HostSecret s;
  s.name = "OPENAI_API_KEY";
  s.hosts = {kHost};
  s.value = "first-value";
  s.placeholder_shape = {"sk-", 48, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"};
  vm.change_policy(PolicyChange::set_secret(s));
  const std::string before = vm.policy().secrets.at(0).placeholder;
  HostSecret replacement;
  replacement.name = s.name;
  replacement.hosts = s.hosts;
  replacement.value = kSecret;
  vm.change_policy(PolicyChange::set_secret(replacement));
  EXPECT_EQ(vm.policy().secrets.at(0).placeholder, before);
  auto used = vm.exec(Command::shell(check + "curl -sSf -H 'Authorization: Bearer " + before + "' " + url("/digest") +
                                     " | grep -c " + kBearerDigest));
  EXPECT_EQ(used.stdout_data, "shaped\n1\n") << used.stderr_data;
}

TEST_F(LivePolicy, PolicyCommandChangesARunningSession) {
  VmOptions o = options();
  o.register_session = true;
  Vm vm = Vm::create(o);
  const std::string id = vm.session_id();
  auto allow = run_gondolin({"policy", id, "allow", kHost});
  ASSERT_EQ(allow.exit_code, 0) << allow.err;
  auto set = run_gondolin({"policy", id, "secret", "set", std::string("TOKEN@") + kHost + ":GET=@-"},
                          with_stdin(std::string(kSecret) + "\n"));
  ASSERT_EQ(set.exit_code, 0) << set.err;
  auto show = run_gondolin({"policy", id, "show", "--json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  auto j = nlohmann::json::parse(show.out);
  EXPECT_EQ(j["allow_hosts"], nlohmann::json::array({kHost}));
  EXPECT_EQ(j["secrets"][0]["methods"], nlohmann::json::array({"GET"}));
  EXPECT_EQ(show.out.find(kSecret), std::string::npos);
  EXPECT_EQ(vm.exec(Command::shell("curl -sSf -H \"Authorization: Bearer $TOKEN\" " + url("/digest") + " | grep -c " +
                                   kBearerDigest))
                .stdout_data,
            "1\n");

  auto bad = run_gondolin({"policy", id, "deny", "a b"});
  EXPECT_EQ(bad.exit_code, 125);
  EXPECT_NE(bad.err.find("a b"), std::string::npos) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  auto missing = run_gondolin({"policy", id, "secret", "rm", "NOPE"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("no secret named NOPE"), std::string::npos) << missing.err;
  auto human = run_gondolin({"policy", id, "show"});
  EXPECT_NE(human.out.find("allow hosts:     api.github.com"), std::string::npos) << human.out;
}

TEST_F(LivePolicy, InternalHostsOnlyWhenNamed) {
  // The host's resolver (its /etc/hosts, replaced in a private mount
  // namespace) puts both names on loopback, as a 10.x gateway would be.
  upstream_ = std::make_unique<egress::testing::PythonUpstream>();
  fs::path hosts = dir_.path() / "hosts";
  host_sh("printf '127.0.0.1 localhost\\n127.0.0.1 gateway.corp.test other.corp.test\\n' > '" + hosts.string() + "'");
  const std::string port = std::to_string(upstream_->port());
  CliOptions wrapped;
  wrapped.wrapper = {"unshare", "-m", "sh", "-c", "mount --bind '" + hosts.string() + "' /etc/hosts && exec \"$@\"",
                     "sh"};
  auto r = run_gondolin(
      {"exec", "--allow-host", "*.corp.test", "--allow-internal-host", "gateway.corp.test", "--", "sh", "-c",
       "curl -sS -o /dev/null -w '%{http_code}\\n' http://gateway.corp.test:" + port +
           "/echo; curl -sS -w '\\n%{http_code}\\n' http://other.corp.test:" + port + "/echo"},
      wrapped);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, 4), "200\n") << r.out;
  EXPECT_NE(r.out.find("resolves to an internal address"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.substr(r.out.size() - 4), "403\n") << r.out;
}

}  // namespace
}  // namespace gondolin::testing
