// HTTP and HTTPS egress end to end: the guest's own curl, git and python
// reach a real HTTPS server on host loopback (its own test CA, trusted by the
// host only) through gondolin's stack, allowlist, MITM and secret
// substitution. What the upstream received is checked on the host.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "config/test_knobs.h"
#include "egress_harness.h"
#include "gondolin/session.h"
#include "gondolin/vm.h"
#include "sha256_hex.h"
#include "test_support.h"
#include "util/files.h"

namespace gondolin::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kHost = "upstream.example.test";
constexpr const char* kSecret = "s3cr3t-value-never-in-guest";

class EgressE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = egress::testing::TestPki::create(dir_.path(), {kHost});
    repo_root_ = dir_.path() / "www";
    fs::create_directories(repo_root_);
    host_sh("cd '" + dir_.path().string() +
            "' && git init -q -b main seed && cd seed && echo 'over https' > README && "
            "git add README && git -c user.name=Seed -c user.email=s@example.test commit -qm initial && "
            "git clone -q --bare . '" +
            (repo_root_ / "repo.git").string() +
            "' && "
            "git -C '" +
            (repo_root_ / "repo.git").string() + "' update-server-info");
    upstream_ = std::make_unique<egress::testing::PythonUpstream>(pki_.server_cert, pki_.server_key, repo_root_);
  }

  std::string url(const std::string& path) const {
    return "https://" + std::string(kHost) + ":" + std::to_string(upstream_->port()) + path;
  }

  CliResult run_in_guest(const std::string& script, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"exec",
                                     "--allow-host",
                                     kHost,
                                     "--test-loopback-host",
                                     kHost,
                                     "--upstream-ca",
                                     pki_.ca_cert.string(),
                                     "--egress-log",
                                     (dir_.path() / "egress.log").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {"--", "sh", "-c", script});
    return run_gondolin(args);
  }

  std::vector<nlohmann::json> log_lines() const {
    std::vector<nlohmann::json> out;
    std::error_code ec;
    if (!fs::exists(dir_.path() / "egress.log", ec)) return out;
    std::string text = read_file(dir_.path() / "egress.log");
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      if (end > start) out.push_back(nlohmann::json::parse(text.substr(start, end - start)));
      start = end + 1;
    }
    return out;
  }

  TempDir dir_;
  egress::testing::TestPki pki_;
  fs::path repo_root_;
  std::unique_ptr<egress::testing::PythonUpstream> upstream_;
};

TEST_F(EgressE2e, CurlGitAndPythonReachAnAllowedHttpsHost) {
  auto r = run_in_guest("set -e; curl -sSf " + url("/echo") +
                        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"method\"])'; "
                        "git clone -q " +
                        url("/static/repo.git") +
                        " /tmp/r; cat /tmp/r/README; "
                        "python3 -c 'import urllib.request; print(len(urllib.request.urlopen(\"" +
                        url("/bytes?n=12345") +
                        "\").read()))'; "
                        "curl -sS -o /dev/null -w '%{http_code}\\n' " +
                        url("/chunked?n=100000"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "GET\nover https\n12345\n200\n");
  bool saw_allow = false;
  for (const auto& line : log_lines())
    saw_allow = saw_allow || (line["decision"] == "allow" && line["host"] == kHost && line["kind"] == "https");
  EXPECT_TRUE(saw_allow);
}

TEST_F(EgressE2e, HostsOutsideTheAllowlistGetAClearRefusal) {
  auto r = run_in_guest(
      "curl -sS -w '\\n%{http_code}\\n' https://denied.example.test/; "
      "curl -sS -w '\\n%{http_code}\\n' http://denied.example.test/");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"denied.example.test\" is not in the allowlist"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n403\n"), std::string::npos) << r.out;
  int denies = 0;
  for (const auto& line : log_lines())
    if (line["decision"] == "deny" && line["host"] == "denied.example.test") ++denies;
  EXPECT_EQ(denies, 2);
}

TEST_F(EgressE2e, SecretsAreSubstitutedOnTheWayOutAndOnlyForTheirHost) {
  // The upstream reports digests of the headers it received; the guest
  // reports whether the value arrived, what an echo of it shows (the
  // placeholder: the reflection guard), and what its own variable holds.
  auto r = run_in_guest(
      "case \"$TOKEN\" in GONDOLIN_SECRET_*) echo placeholder;; *) echo LEAK;; esac; "
      "curl -sSf -H \"Authorization: Bearer $TOKEN\" " +
          url("/digest") + " | grep -c " + sha256_hex(std::string("Bearer ") + kSecret) +
          "; "
          "curl -sSf -H \"Authorization: Bearer $TOKEN\" " +
          url("/echo?chunk=4") + " | grep -c \"Bearer $TOKEN\"; " + "grep -rlF '" + kSecret +
          "' /etc /tmp /root /run 2>/dev/null | wc -l; env | grep -cF '" + kSecret + "' || true",
      {"--host-secret", std::string("TOKEN@") + kHost + "=" + kSecret});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "placeholder\n1\n1\n0\n0\n");
  bool named = false;
  for (const auto& line : log_lines())
    if (line["decision"] == "allow" && line["secrets"].is_array() && !line["secrets"].empty())
      named = line["secrets"][0] == "TOKEN";
  EXPECT_TRUE(named);
  // The log names the secret but never holds its value.
  EXPECT_EQ(read_file(dir_.path() / "egress.log").find(kSecret), std::string::npos);
}

TEST_F(EgressE2e, BasicAuthForeignHostsAndQueryStrings) {
  const std::string other = "other.example.test";
  const std::string other_url = "https://" + other + ":" + std::to_string(upstream_->port()) + "/echo";
  auto r = run_in_guest(
      // Basic: user:placeholder is decoded, substituted and re-encoded.
      "curl -sSf -u \"user:$TOKEN\" " + url("/digest") + " | grep -c " +
          sha256_hex("Basic " + host_sh("printf 'user:%s' " + std::string(kSecret) + " | base64 -w0")) +
          "; "
          // The placeholder aimed at a host the secret is not for: blocked.
          "curl -sS -w '\\n%{http_code}\\n' -H \"Authorization: Bearer $TOKEN\" " +
          other_url +
          "; "
          // Query strings are left alone without --secrets-in-query.
          "curl -sSf \"" +
          url("/echo") + "?t=$TOKEN\" | grep -c GONDOLIN_SECRET_",
      {"--host-secret", std::string("TOKEN@") + kHost + "=" + kSecret, "--allow-host", other, "--test-loopback-host",
       other});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("1\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("secret TOKEN may not be sent to host \"" + other + "\"\n\n403\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.substr(r.out.size() - 2), "1\n") << r.out;

  auto q = run_in_guest(
      "curl -sSf \"" + url("/digest") + "?t=$TOKEN\" | grep -c " + sha256_hex("/digest?t=" + std::string(kSecret)),
      {"--host-secret", std::string("TOKEN@") + kHost + "=" + kSecret, "--secrets-in-query"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_EQ(q.out, "1\n");
}

TEST_F(EgressE2e, ChunkedUploadOf100MbStreamsThrough) {
  auto r = run_in_guest("head -c 100000000 /dev/zero | curl -sSf -T - " + url("/upload") +
                        " | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[\"bytes\"], "
                        "d[\"headers\"].get(\"Transfer-Encoding\"))'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "100000000 chunked\n");
}

TEST_F(EgressE2e, ResumedSessionKeepsItsAllowlistAndReachesTheHostAgain) {
  auto options = [&](bool with_allowlist) {
    VmOptions o;
    if (with_allowlist) o.network.allow_hosts = {kHost};
    config::test_knobs(o.network).loopback_hosts = {kHost};
    config::test_knobs(o.network).extra_upstream_ca_file = pki_.ca_cert.string();
    return o;
  };
  const std::string curl = "curl -sS -o /dev/null -w '%{http_code}\\n' " + url("/echo");
  {
    Vm vm = Vm::create(options(true));
    auto before = vm.exec(Command::shell(curl));
    EXPECT_EQ(before.stdout_data, "200\n") << before.stderr_data;
    vm.snapshot(dir_.path() / "snap");
  }
  // The resumer names no hosts: the session's allowlist carries over, and
  // the fresh stack and proxy on the host serve the old guest.
  Vm resumed = Vm::resume((dir_.path() / "snap").string(), options(false));
  auto after = resumed.exec(Command::shell(curl));
  EXPECT_EQ(after.stdout_data, "200\n") << after.stderr_data;
  auto denied =
      resumed.exec(Command::shell("curl -sS -o /dev/null -w '%{http_code}\\n' https://elsewhere.example.test/"));
  EXPECT_EQ(denied.stdout_data, "403\n") << denied.stderr_data;
}

TEST_F(EgressE2e, UpstreamCertificateFailureIsA502ForTheGuest) {
  // Without --upstream-ca the host does not trust the test server.
  std::vector<std::string> args = {"exec", "--allow-host", kHost, "--test-loopback-host", kHost,       "--",
                                   "curl", "-sS",          "-w",  "\n%{http_code}\n",     url("/echo")};
  auto r = run_gondolin(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("failed verification"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n502\n"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace gondolin::testing
