// Egress set-up inside a real guest: the MITM CA is trusted, secrets are
// placeholders, and bad network flags fail before any VM starts.
// (Guest-level HTTP tests arrive with the network stack.)
#include <gtest/gtest.h>

#include <fstream>

#include "gondolin/vm.h"
#include "test_support.h"

using namespace gondolin;
using namespace gondolin::testing;

TEST(EgressGuest, CaInstalledAndSecretsArePlaceholders) {
  TempDir dir;
  VmOptions o;
  o.network.mitm_ca_dir = (dir.path() / "mitm").string();
  o.network.secrets = {HostSecret{"API_TOKEN", {"api.example.com"}, "the-real-secret-value", {}, {}, {}, {}}};
  Vm vm = Vm::create(o);

  std::ifstream in(dir.path() / "mitm" / "ca.crt");
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_NE(pem.find("BEGIN CERTIFICATE"), std::string::npos);
  EXPECT_EQ(vm.read_file("/etc/gondolin/mitm/ca.crt"), pem);
  std::string bundle = vm.read_file("/etc/ssl/certs/ca-certificates.crt");
  EXPECT_EQ(bundle.substr(bundle.size() - pem.size()), pem);
  EXPECT_GT(bundle.size(), pem.size() * 10) << "appended to the distribution bundle, not replacing it";

  // python's default context (what urllib uses) trusts it.
  auto py =
      vm.exec(std::string("python3 -c \"import ssl; print(any('Gondolin MITM CA' in str(c['subject']) for c in "
                          "ssl.create_default_context().get_ca_certs()))\""));
  EXPECT_EQ(py.stdout_data, "True\n") << py.stderr_data;

  auto env = vm.exec(std::string("echo \"$API_TOKEN\""));
  EXPECT_EQ(env.stdout_data.rfind("GONDOLIN_SECRET_", 0), 0u) << env.stdout_data;
  EXPECT_EQ(env.stdout_data.size(), std::string("GONDOLIN_SECRET_").size() + 32 + 1);
  // The value is nowhere in the guest: environment, /proc, files gondolin wrote.
  auto grep =
      vm.exec(std::string("env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; cat /etc/gondolin/mitm/ca.crt"));
  EXPECT_EQ(grep.stdout_data.find("the-real-secret-value"), std::string::npos);
  EXPECT_NE(grep.stdout_data.find("API_TOKEN=GONDOLIN_SECRET_"), std::string::npos);
  EXPECT_EQ(vm.read_file("/etc/gondolin/mitm/ca.crt").find("PRIVATE KEY"), std::string::npos);
}

TEST(EgressGuest, CliHostSecretGivesThePlaceholder) {
  auto r =
      run_gondolin({"exec", "--host-secret", "TOKEN@api.example.com=s3cr3t-value", "--", "sh", "-c", "echo $TOKEN"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("GONDOLIN_SECRET_", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find("s3cr3t-value"), std::string::npos);
  EXPECT_EQ(r.err.find("s3cr3t-value"), std::string::npos);
}

TEST(EgressGuest, BadNetworkFlagsFailClearlyWithoutAVm) {
  auto pattern = run_gondolin({"exec", "--allow-host", "bad host", "--", "true"});
  EXPECT_EQ(pattern.exit_code, 125);
  EXPECT_NE(pattern.err.find("invalid host pattern 'bad host'"), std::string::npos) << pattern.err;

  CliOptions unset;
  unset.unset_env = {"NOPE_UNSET_VAR"};
  auto secret = run_gondolin({"exec", "--host-secret", "NOPE_UNSET_VAR@h", "--", "true"}, unset);
  EXPECT_EQ(secret.exit_code, 125);
  EXPECT_NE(secret.err.find("$NOPE_UNSET_VAR is not set"), std::string::npos) << secret.err;

  TempDir dir;
  std::ofstream(dir.path() / "p.json") << R"({"allow_hosts": ["a.example.com"], "alow_all_hosts": true})";
  auto policy = run_gondolin({"exec", "--policy", (dir.path() / "p.json").string(), "--", "true"});
  EXPECT_EQ(policy.exit_code, 125);
  EXPECT_NE(policy.err.find("unknown key \"alow_all_hosts\""), std::string::npos) << policy.err;

  auto help = run_gondolin({"exec", "--help"});
  EXPECT_NE(help.out.find("Without --allow-host every HTTP request is denied"), std::string::npos) << help.out;
}
