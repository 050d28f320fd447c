// Secrets through the egress proxy without a VM: substitution for their
// hosts only, in headers, Basic credentials and (with the flag) query
// strings, and the reflection guard on echoing upstreams.
#include <gtest/gtest.h>

#include "egress/policy/base64.h"
#include "egress_proxy_fixture.h"
#include "sha256_hex.h"

using namespace gondolin;
using namespace gondolin::egress;
using namespace gondolin::egress::testing;
using gondolin::testing::sha256_hex;

TEST_F(EgressProxyTest, SecretsSubstitutedInBearerAndBasicForTheirHostOnly) {
  auto o = options();
  o.allow_hosts = {"upstream.test", "other.test"};
  o.secrets = {HostSecret{"API_TOKEN", {"upstream.test"}, "real-token-value", {}, {}, {}, {}},
               HostSecret{"API_PASS", {"upstream.test"}, "real:pass", {}, {}, {}, {}}};
  EgressHarness h(o);
  h.set_destination(plain_->port());
  std::string token = h.placeholder("API_TOKEN"), pass = h.placeholder("API_PASS");
  ASSERT_FALSE(token.empty());

  // What arrived upstream (by digest: an echo would be scrubbed, see below).
  auto bearer = fetch(h, {"-H", "Authorization: Bearer " + token, http_url("upstream.test", "/digest")});
  ASSERT_EQ(bearer.status, 200) << bearer.body;
  EXPECT_EQ(json_of(bearer)["headers"]["Authorization"], sha256_hex("Bearer real-token-value"));

  auto basic = fetch(h, {"-u", "alice:" + pass, http_url("upstream.test", "/digest")});
  ASSERT_EQ(basic.status, 200);
  EXPECT_EQ(json_of(basic)["headers"]["Authorization"], sha256_hex("Basic " + base64_encode("alice:real:pass")));

  auto foreign = fetch(h, {"-H", "Authorization: Bearer " + token, http_url("other.test", "/echo")});
  EXPECT_EQ(foreign.status, 403);
  EXPECT_EQ(foreign.body, "gondolin: secret API_TOKEN may not be sent to host \"other.test\"\n");

  // The log names secrets, never their values.
  std::string log = h.log_text();
  EXPECT_EQ(log.find("real-token-value"), std::string::npos);
  EXPECT_EQ(log.find("real:pass"), std::string::npos);
  auto lines = h.log_lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["secrets"], nlohmann::json::array({"API_TOKEN"}));
  EXPECT_EQ(lines[2]["rule"], "secret-host");
}

TEST_F(EgressProxyTest, EchoedSecretsComeBackAsPlaceholders) {
  auto o = options();
  o.allow_hosts = {"upstream.test"};
  o.secrets = {HostSecret{"TOKEN", {"upstream.test"}, "echoed-secret-0123456789", {}, {}, {}, {}},
               HostSecret{"PASS", {"upstream.test"}, "pw:echoed", {}, {}, {}, {}}};
  EgressHarness h(o);
  h.set_destination(plain_->port());
  const std::string token = h.placeholder("TOKEN"), pass = h.placeholder("PASS");
  const std::string bearer = "Authorization: Bearer " + token;

  // Body (Content-Length upstream, re-framed: the length changes) and headers.
  auto r = h.curl({"-sS", "-D", "-", "-H", bearer, http_url("upstream.test", "/echo?hdr=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("echoed-secret"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("X-Echo-Authorization: Bearer " + token), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"Authorization\": \"Bearer " + token + "\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Transfer-Encoding: chunked"), std::string::npos) << r.out;

  // Chunked in 1-, 5- and 7-byte pieces: the value straddles every boundary.
  for (const char* chunk : {"1", "5", "7"}) {
    auto c = fetch(h, {"-H", bearer, http_url("upstream.test", std::string("/echo?chunk=") + chunk)});
    ASSERT_EQ(c.status, 200) << c.body;
    EXPECT_EQ(json_of(c)["headers"]["Authorization"], "Bearer " + token) << "chunk " << chunk;
  }
  // A Basic credential comes back as the guest sent it.
  auto basic = fetch(h, {"-u", "alice:" + pass, http_url("upstream.test", "/echo?chunk=3")});
  EXPECT_EQ(json_of(basic)["headers"]["Authorization"], "Basic " + base64_encode("alice:" + pass));

  // HTTP/1.0: close-delimited instead of chunked, still scrubbed.
  auto old = fetch(h, {"--http1.0", "-H", bearer, http_url("upstream.test", "/echo")});
  EXPECT_EQ(json_of(old)["headers"]["Authorization"], "Bearer " + token);

  // The request asked for no content coding; one that comes anyway is refused.
  auto asked = fetch(h, {"-H", bearer, "-H", "Accept-Encoding: gzip", http_url("upstream.test", "/echo")});
  EXPECT_EQ(json_of(asked)["headers"]["Accept-Encoding"], "identity");
  auto zipped = fetch(h, {"-H", bearer, http_url("upstream.test", "/echo?gzip=1")});
  EXPECT_EQ(zipped.status, 502);
  EXPECT_NE(zipped.body.find("content-encoded response to a request that carried a secret"), std::string::npos)
      << zipped.body;
  // Without a secret nothing is touched: the guest's coding, the length.
  auto plain = h.curl({"-sS", "-D", "-", "-o", "/dev/null", http_url("upstream.test", "/echo?gzip=1")});
  EXPECT_NE(plain.out.find("Content-Encoding: gzip"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("Content-Length: "), std::string::npos) << plain.out;
  EXPECT_EQ(h.log_text().find("echoed-secret"), std::string::npos);
}

TEST_F(EgressProxyTest, QueryPlaceholdersOnlyWithTheFlag) {
  auto o = options();
  o.allow_hosts = {"upstream.test"};
  o.secrets = {HostSecret{"KEY", {"upstream.test"}, "k&v", {}, {}, {}, {}}};
  EgressHarness off(o);
  off.set_destination(plain_->port());
  std::string key = off.placeholder("KEY");
  auto r = fetch(off, {http_url("upstream.test", "/echo?key=" + key)});
  EXPECT_EQ(json_of(r)["path"], "/echo?key=" + key);

  o.secrets_in_query = true;
  EgressHarness on(o);
  on.set_destination(plain_->port());
  std::string key2 = on.placeholder("KEY");
  auto r2 = fetch(on, {http_url("upstream.test", "/digest?key=" + key2)});
  EXPECT_EQ(json_of(r2)["path"], sha256_hex("/digest?key=k%26v"));
  // An echo of the encoded value comes back as the placeholder.
  auto r3 = fetch(on, {http_url("upstream.test", "/echo?key=" + key2)});
  EXPECT_EQ(json_of(r3)["path"], "/echo?key=" + key2);
}
