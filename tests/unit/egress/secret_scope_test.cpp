// Secrets as a way in (secret-host), their scopes, revocation, the deny
// list, and the wire and JSON forms of live policy changes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cli/vm_flags.h"
#include "config/host_secret_rules.h"
#include "config/policy_state_json.h"
#include "egress/policy/egress_policy.h"
#include "gondolin/error.h"
#include "session/policy_request.h"

using namespace gondolin;
using namespace gondolin::egress;

namespace {

std::string placeholder_of(const EgressPolicy& p, const std::string& name) {
  for (const auto& [k, v] : p.secrets().guest_env())
    if (k == name) return v;
  return {};
}

HttpRequest request(std::string method, std::string host, std::string target, const std::string& bearer = {}) {
  HttpRequest r;
  r.method = std::move(method);
  r.host = std::move(host);
  r.target = std::move(target);
  if (!bearer.empty()) r.headers.add("Authorization", "Bearer " + bearer);
  return r;
}

std::string rule_of(const std::variant<Authorization, Denial>& v) {
  if (auto* d = std::get_if<Denial>(&v)) return d->rule;
  return std::get<Authorization>(v).rule;
}

HostSecret secret(std::string name, std::vector<std::string> hosts, std::vector<std::string> methods = {},
                  std::vector<std::string> prefixes = {}) {
  HostSecret s;
  s.name = std::move(name);
  s.hosts = std::move(hosts);
  s.value = "s3cr3t";
  s.methods = std::move(methods);
  s.path_prefixes = std::move(prefixes);
  return s;
}

}  // namespace

TEST(SecretHost, APlaceholderMakesItsHostReachableForThatRequestOnly) {
  NetworkOptions o;
  o.secrets = {secret("GITHUB_TOKEN", {"api.github.com"}), secret("OTHER", {"other.example"})};
  EgressPolicy p(o);
  std::string token = placeholder_of(p, "GITHUB_TOKEN");

  auto with = request("GET", "api.github.com", "/user", token);
  auto a = p.authorize(with);
  EXPECT_EQ(rule_of(a), "secret-host GITHUB_TOKEN");
  EXPECT_EQ(with.headers.get("authorization").value(), "Bearer s3cr3t");

  auto without = request("GET", "api.github.com", "/user");
  EXPECT_EQ(rule_of(p.authorize(without)), "not-in-allowlist");

  auto foreign = request("GET", "api.github.com", "/user", placeholder_of(p, "OTHER"));
  EXPECT_EQ(rule_of(p.authorize(foreign)), "not-in-allowlist");
  EXPECT_EQ(foreign.headers.get("authorization").value(), "Bearer " + placeholder_of(p, "OTHER"));
}

TEST(DenyHost, WinsOverAllowAllAllowHostAndSecrets) {
  NetworkOptions o;
  o.allow_all_hosts = true;
  o.allow_hosts = {"*.example.com"};
  o.deny_hosts = {"bad.example.com"};
  o.secrets = {secret("T", {"bad.example.com"})};
  EgressPolicy p(o);
  auto r = request("GET", "bad.example.com", "/", placeholder_of(p, "T"));
  auto d = p.authorize(r);
  ASSERT_TRUE(std::holds_alternative<Denial>(d));
  EXPECT_EQ(std::get<Denial>(d).rule, "deny-host");
  EXPECT_EQ(std::get<Denial>(d).status, 403);
  EXPECT_EQ(r.headers.get("authorization").value(), "Bearer " + placeholder_of(p, "T")) << "not substituted";
  auto ok = request("GET", "good.example.com", "/");
  EXPECT_EQ(rule_of(p.authorize(ok)), "allow-host *.example.com");
}

TEST(SecretScope, MethodsAndPathPrefixesBoundTheSubstitution) {
  NetworkOptions o;
  o.allow_hosts = {"api.example.com"};
  o.secrets = {secret("T", {"api.example.com"}, {"GET", "POST"}, {"/v1/", "/exact"})};
  EgressPolicy p(o);
  std::string t = placeholder_of(p, "T");
  auto verdict = [&](std::string method, std::string target) {
    auto r = request(std::move(method), "api.example.com", std::move(target), t);
    return rule_of(p.authorize(r));
  };
  EXPECT_EQ(verdict("GET", "/v1/models"), "allow-host api.example.com");
  EXPECT_EQ(verdict("POST", "/v1/x?y=1"), "allow-host api.example.com");
  EXPECT_EQ(verdict("GET", "/exact"), "allow-host api.example.com");
  EXPECT_EQ(verdict("GET", "/exact/sub"), "allow-host api.example.com");
  EXPECT_EQ(verdict("DELETE", "/v1/models"), "secret-scope");
  EXPECT_EQ(verdict("get", "/v1/models"), "secret-scope") << "methods are case-sensitive";
  EXPECT_EQ(verdict("GET", "/v2/models"), "secret-scope");
  EXPECT_EQ(verdict("GET", "/exactly"), "secret-scope");
  EXPECT_EQ(verdict("GET", "/v1/../admin"), "secret-scope");
  EXPECT_EQ(verdict("GET", "/v1/%2e%2e/admin"), "secret-scope");
  EXPECT_EQ(verdict("GET", "/v1/a%2Fb"), "secret-scope");
  EXPECT_EQ(verdict("GET", "/v1/./x"), "secret-scope");
  auto plain = request("DELETE", "api.example.com", "/v2/");
  EXPECT_EQ(rule_of(p.authorize(plain)), "allow-host api.example.com") << "no placeholder: scope is not involved";
}

TEST(SecretRevoked, ARevokedPlaceholderIsRefused) {
  NetworkOptions o;
  o.allow_all_hosts = true;
  EgressPolicy p(o, {RevokedSecret{"OLD", "GONDOLIN_SECRET_00112233445566778899aabbccddeeff"}});
  auto r = request("GET", "api.example.com", "/", "GONDOLIN_SECRET_00112233445566778899aabbccddeeff");
  auto d = p.authorize(r);
  ASSERT_TRUE(std::holds_alternative<Denial>(d));
  EXPECT_EQ(std::get<Denial>(d).rule, "secret-revoked");
  EXPECT_EQ(std::get<Denial>(d).reason, "secret OLD was revoked");
}

TEST(HostSecretFlag, ParsesScopes) {
  auto s = config::parse_host_secret("T@api.example.com,*.example.org:GET,POST/v1/,/v2=x:y");
  EXPECT_EQ(s.hosts, (std::vector<std::string>{"api.example.com", "*.example.org"}));
  EXPECT_EQ(s.methods, (std::vector<std::string>{"GET", "POST"}));
  EXPECT_EQ(s.path_prefixes, (std::vector<std::string>{"/v1/", "/v2"}));
  EXPECT_EQ(s.value, "x:y");
  auto paths_only = config::parse_host_secret("T@h:/v1/=x");
  EXPECT_TRUE(paths_only.methods.empty());
  EXPECT_EQ(paths_only.path_prefixes, (std::vector<std::string>{"/v1/"}));
  auto methods_only = config::parse_host_secret("T@h:GET=x");
  EXPECT_EQ(methods_only.methods, (std::vector<std::string>{"GET"}));
  EXPECT_TRUE(methods_only.path_prefixes.empty());
  for (const char* bad : {"T@h:=x", "T@h:G ET=x", "T@h:GET/v1?q=x", "T@h:GET,/v1/,v2=x", "T@h:GET,,POST=x"})
    EXPECT_THROW(config::parse_host_secret(bad), Error) << bad;
}

TEST(LivePolicyWire, ChangesAndStatesRoundTrip) {
  HostSecret s = secret("T", {"h.example"}, {"GET"}, {"/v1/"});
  s.placeholder_shape = {"sk-", 40, "0123456789abcdefghijklmnopqrstuvwxyz"};
  for (const auto& change : {PolicyChange::allow_host("a.example"), PolicyChange::deny_host("*.b.example"),
                             PolicyChange::set_secret(s), PolicyChange::remove_secret("T")}) {
    auto back = session::policy_change(session::policy_request(change));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->kind, change.kind);
    EXPECT_EQ(back->pattern, change.pattern);
    EXPECT_EQ(back->secret.name, change.secret.name);
    EXPECT_EQ(back->secret.hosts, change.secret.hosts);
    EXPECT_EQ(back->secret.methods, change.secret.methods);
    EXPECT_EQ(back->secret.value, change.secret.value);
    EXPECT_EQ(back->secret.placeholder_shape.prefix, change.secret.placeholder_shape.prefix);
    EXPECT_EQ(back->secret.placeholder_shape.length, change.secret.placeholder_shape.length);
    EXPECT_EQ(back->secret.placeholder_shape.alphabet, change.secret.placeholder_shape.alphabet);
  }
  EXPECT_FALSE(session::policy_change(session::policy_request(std::nullopt)).has_value());

  PolicyState st;
  st.allow_hosts = {"a"};
  st.deny_hosts = {"b"};
  st.allow_all_hosts = true;
  st.secrets.push_back({"T", {"h"}, {"GET"}, {"/v1/"}, "GONDOLIN_SECRET_x"});
  st.revoked_secrets = {"OLD"};
  std::string json = config::policy_state_to_json(st);
  EXPECT_EQ(json.find("s3cr3t"), std::string::npos);
  PolicyState back = config::policy_state_from_json(json);
  EXPECT_EQ(back.allow_hosts, st.allow_hosts);
  EXPECT_EQ(back.deny_hosts, st.deny_hosts);
  EXPECT_TRUE(back.allow_all_hosts);
  ASSERT_EQ(back.secrets.size(), 1u);
  EXPECT_EQ(back.secrets[0].path_prefixes, st.secrets[0].path_prefixes);
  EXPECT_EQ(back.revoked_secrets, st.revoked_secrets);
  for (const char* bad : {"[]", "{\"secrets\": 3}", "{\"allow_hosts\": [1]}", "{\"secrets\": [{\"name\": 1}]}", "{"})
    EXPECT_THROW(config::policy_state_from_json(bad), Error) << bad;
}

TEST(PlaceholderShape, CustomShapesAreMadeCheckedAndSubstituted) {
  NetworkOptions o;
  o.allow_hosts = {"api.example.com"};
  HostSecret s = secret("OPENAI_API_KEY", {"api.example.com"});
  s.placeholder_shape.prefix = "sk-";
  s.placeholder_shape.length = 48;
  s.placeholder_shape.alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  o.secrets = {s};
  EgressPolicy p(o);
  std::string key = placeholder_of(p, "OPENAI_API_KEY");
  ASSERT_EQ(key.size(), 3u + 48u) << key;
  EXPECT_EQ(key.rfind("sk-", 0), 0u);
  EXPECT_EQ(key.find_first_not_of(s.placeholder_shape.alphabet, 3), std::string::npos) << key;
  EXPECT_NE(key, placeholder_of(EgressPolicy(o), "OPENAI_API_KEY")) << "random per policy";

  auto r = request("GET", "api.example.com", "/v1/models", key);
  EXPECT_EQ(rule_of(p.authorize(r)), "allow-host api.example.com");
  EXPECT_EQ(r.headers.get("authorization").value(), "Bearer s3cr3t");
  auto twice = request("GET", "api.example.com", "/", "x" + key + "," + key);
  EXPECT_EQ(rule_of(p.authorize(twice)), "allow-host api.example.com");
  EXPECT_EQ(twice.headers.get("authorization").value(), "Bearer xs3cr3t,s3cr3t");

  EgressPolicy revoked(NetworkOptions{}, {RevokedSecret{"OPENAI_API_KEY", key}});
  auto after = request("GET", "api.example.com", "/", key);
  EXPECT_EQ(rule_of(revoked.authorize(after)), "secret-revoked");

  // A resumed guest's placeholder must have the secret's shape.
  s.placeholder = key;
  EXPECT_NO_THROW(SecretStore({s}));
  s.placeholder = "sk-short";
  EXPECT_THROW(SecretStore({s}), Error);
}

TEST(PlaceholderShape, WeakOrUnsafeShapesAreRefused) {
  auto shaped = [](std::string prefix, std::size_t length, std::string alphabet) {
    HostSecret s = secret("K", {"h"});
    s.placeholder_shape = {std::move(prefix), length, std::move(alphabet)};
    return s;
  };
  EXPECT_NO_THROW(SecretStore({shaped("", 128, "01")})) << "128 bits of binary digits";
  EXPECT_THROW(SecretStore({shaped("", 127, "01")}), Error) << "127 bits";
  EXPECT_THROW(SecretStore({shaped("sk-", 32, "ab")}), Error) << "32 bits";
  EXPECT_THROW(SecretStore({shaped("sk /", 32, "0123456789abcdef")}), Error) << "space in the prefix";
  EXPECT_THROW(SecretStore({shaped("sk-", 32, "0123456789abcdee")}), Error) << "repeated alphabet letter";
  EXPECT_THROW(SecretStore({shaped("sk-", 32, "0123456789abcde+")}), Error) << "'+' in the alphabet";
  EXPECT_THROW(SecretStore({shaped("sk-", 300, "0123456789abcdef")}), Error) << "too long";
  EXPECT_THROW(SecretStore({shaped(std::string(65, 'a'), 32, "0123456789abcdef")}), Error) << "prefix too long";
}

TEST(PlaceholderShape, PolicyFileKeys) {
  auto dir = std::filesystem::temp_directory_path() / ("gondolin-shape-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto load = [&](const std::string& text) {
    std::ofstream(dir / "p.json") << text;
    NetworkOptions o;
    load_network_policy_file((dir / "p.json").string(), o);
    return o;
  };
  auto o = load(R"({"secrets": {"K": {"hosts": ["h"], "value": "v", "methods": ["GET"], "path_prefixes": ["/v1/"],
                   "placeholder_prefix": "sk-", "placeholder_length": 40,
                   "placeholder_alphabet": "0123456789abcdefghijklmnopqrstuvwxyz"}}})");
  ASSERT_EQ(o.secrets.size(), 1u);
  EXPECT_EQ(o.secrets[0].placeholder_shape.prefix, "sk-");
  EXPECT_EQ(o.secrets[0].placeholder_shape.length, 40u);
  EXPECT_EQ(o.secrets[0].methods, std::vector<std::string>{"GET"});
  for (const char* bad : {R"({"secrets": {"K": {"hosts": ["h"], "value": "v", "placeholder_length": -1}}})",
                          R"({"secrets": {"K": {"hosts": ["h"], "value": "v", "placeholder_length": "40"}}})",
                          R"({"secrets": {"K": {"hosts": ["h"], "value": "v", "methods": ["G ET"]}}})",
                          R"({"secrets": {"K": {"hosts": ["h"], "value": "v", "placeholder_sufix": "x"}}})"}) {
    try {
      load(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Policy) << bad;
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(PlaceholderShape, FlagFormNamesClassesAndDefaultsTheLength) {
  auto s = config::parse_placeholder_shape("sk-:48:alnum", "--secret-placeholder");
  EXPECT_EQ(s.prefix, "sk-");
  EXPECT_EQ(s.length, 48u);
  EXPECT_EQ(s.alphabet.size(), 62u);
  auto d = config::parse_placeholder_shape("tok_", "--secret-placeholder");
  EXPECT_EQ(d.alphabet, "0123456789abcdef");
  EXPECT_EQ(d.length, 32u) << "128 bits of hex";
  EXPECT_EQ(config::parse_placeholder_shape("x-::alnum", "f").length, 22u) << "ceil(128 / log2(62))";
  EXPECT_EQ(config::parse_placeholder_shape(":40:abcdefghij", "f").alphabet, "abcdefghij");
  for (const char* bad : {"a:b:c:d", "sk-:0", "sk-:4x", "sk-:-3"})
    EXPECT_THROW(config::parse_placeholder_shape(bad, "--secret-placeholder"), Error) << bad;

  // The CLI applies it to the secret of that name, and only to one that exists.
  ::setenv("GONDOLIN_TEST_SHAPED", "v", 1);
  cli::VmFlags f;
  f.host_secrets = {"GONDOLIN_TEST_SHAPED@api.example.com"};
  f.secret_placeholders = {"GONDOLIN_TEST_SHAPED=sk-:48:alnum"};
  VmOptions o = f.to_options();
  ASSERT_EQ(o.network.secrets.size(), 1u);
  EXPECT_EQ(o.network.secrets[0].placeholder_shape.prefix, "sk-");
  SecretStore store(o.network.secrets);
  EXPECT_EQ(store.guest_env()[0].second.size(), 3u + 48u);
  f.secret_placeholders = {"OTHER=sk-"};
  try {
    f.to_options();
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--secret-placeholder OTHER: no secret named OTHER"), std::string::npos);
  }
  ::unsetenv("GONDOLIN_TEST_SHAPED");
}
