// The reflection guard: what a streamed body becomes must not depend on how
// it was split, and every inserted value goes back to what the guest sent.
#include <gtest/gtest.h>

#include <random>

#include "egress/policy/base64.h"
#include "egress/policy/reflection_guard.h"
#include "egress/policy/secret_store.h"

using namespace gondolin;
using namespace gondolin::egress;

namespace {

std::string streamed(ReflectionGuard guard, std::string_view text, const std::vector<std::size_t>& cuts) {
  std::string out;
  std::size_t from = 0;
  for (std::size_t cut : cuts) {
    guard.feed(text.substr(from, cut - from), out);
    from = cut;
  }
  guard.feed(text.substr(from), out);
  guard.flush(out);
  return out;
}

}  // namespace

TEST(ReflectionGuard, WholeStringsAndLeftmostLongest) {
  ReflectionGuard g({{"secret", "PH"}, {"secret-long", "PL"}, {"", "ignored"}});
  EXPECT_EQ(g.scrub("a secret, a secret-long, secre"), "a PH, a PL, secre");
  EXPECT_EQ(g.scrub("no match"), "no match");
  EXPECT_EQ(g.scrub(""), "");
  ReflectionGuard none({});
  std::string out;
  none.feed("as is", out);
  none.flush(out);
  EXPECT_EQ(out, "as is");
}

TEST(ReflectionGuard, EverySplitGivesTheSameResult) {
  const std::vector<Reflection> r = {{"abcab", "X"}, {"cab", "YYYY"}, {"bca", ""}, {"tok-123", "PLACEHOLDER"}};
  ReflectionGuard whole(r);
  std::mt19937 rng(7);
  const std::string alphabet = "abc-tok123";
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    std::size_t n = rng() % 40;
    for (std::size_t i = 0; i < n; ++i) text += alphabet[rng() % alphabet.size()];
    if (rng() % 2) text.insert(rng() % (text.size() + 1), "tok-123");
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < text.size(); ++i)
      if (rng() % 3 == 0) cuts.push_back(i);
    ASSERT_EQ(streamed(ReflectionGuard(r), text, cuts), whole.scrub(text)) << text;
    std::vector<std::size_t> every;
    for (std::size_t i = 1; i < text.size(); ++i) every.push_back(i);
    ASSERT_EQ(streamed(ReflectionGuard(r), text, every), whole.scrub(text)) << text;
  }
}

TEST(ReflectionGuard, HoldsBackNoMoreThanTheLongestPatternLessOne) {
  ReflectionGuard g(std::vector<Reflection>{{"0123456789", "P"}});
  std::string out;
  g.feed(std::string(1000, 'x') + "01234", out);
  EXPECT_EQ(out.size(), 1005u - 9u);
  g.feed("56789 and more", out);
  g.flush(out);
  EXPECT_EQ(out, std::string(1000, 'x') + "P and more");
}

TEST(ReflectionGuard, SubstitutionRecordsWhatItInserted) {
  SecretStore store({HostSecret{"TOKEN", {"api.test"}, "v4lue&x", {}, {}, {}, {}},
                     HostSecret{"PASS", {"api.test"}, "pw", {}, {}, {}, {}}});
  std::string token, pass;
  for (const auto& [name, placeholder] : store.guest_env()) (name == "TOKEN" ? token : pass) = placeholder;
  HttpRequest req;
  req.method = "GET";
  req.host = "api.test";
  req.target = "/q?k=" + token;
  const std::string basic_in = base64_encode("u:" + pass);
  req.headers = {{"Authorization", "Bearer " + token}, {"Proxy-Authorization", "Basic " + basic_in}};
  auto result = store.substitute(req, true);
  ASSERT_FALSE(result.blocked());
  ReflectionGuard guard(result.reflections);
  // Everything the host put in the request goes back to what the guest sent.
  EXPECT_EQ(guard.scrub(req.headers.list()[0].value), "Bearer " + token);
  EXPECT_EQ(guard.scrub(req.headers.list()[1].value), "Basic " + basic_in);
  EXPECT_EQ(guard.scrub(req.target), "/q?k=" + token);
  EXPECT_EQ(req.target, "/q?k=v4lue%26x");
}
