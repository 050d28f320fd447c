// A parsed request head through the egress policy, as a hostile guest would
// shape it: interpretation against the connection's facts (CONNECT, Host,
// absolute targets, SNI and DNS-name agreement), the allowlist, and secret
// substitution in headers, Basic credentials and (with the flag) queries.
// The marker "@@" in the input stands for the secret's placeholder.
//
// Invariant checked on every input: the secret's value is written only into
// requests to its own host, and never into the path or the body flag's world.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "egress/http/http_parser.h"
#include "egress/policy/egress_policy.h"
#include "egress/policy/reflection_guard.h"
#include "gondolin/error.h"

using namespace gondolin;
using namespace gondolin::egress;

namespace {

constexpr std::string_view kValue = "s3cr3t-VALUE-9f8e";
const std::string kPlaceholder = "GONDOLIN_SECRET_00112233445566778899aabbccddeeff";

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Scoped: TOKEN only in GET requests under /v1/.
const EgressPolicy& policy(bool in_query, bool scoped) {
  auto make = [](bool q, bool sc) {
    NetworkOptions o;
    o.allow_hosts = {"api.example.com", "*.allowed.test"};
    o.secrets = {HostSecret{"TOKEN", {"api.example.com"}, std::string(kValue), {}, {}, kPlaceholder, {}}};
    if (sc) {
      o.secrets[0].methods = {"GET"};
      o.secrets[0].path_prefixes = {"/v1/"};
    }
    o.secrets_in_query = q;
    return EgressPolicy(o);
  };
  static const EgressPolicy policies[4] = {make(false, false), make(true, false), make(false, true), make(true, true)};
  return policies[(in_query ? 1 : 0) + (scoped ? 2 : 0)];
}

bool contains_value(const HttpRequest& r) {
  if (r.target.find(kValue) != std::string::npos || r.host.find(kValue) != std::string::npos) return true;
  for (const auto& h : r.headers.list())
    if (h.name.find(kValue) != std::string::npos || h.value.find(kValue) != std::string::npos) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t flags = data[0];
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  for (std::size_t at = text.find("@@"); at != std::string::npos; at = text.find("@@", at + kPlaceholder.size()))
    text.replace(at, 2, kPlaceholder);

  if (text.find(kValue) != std::string::npos) return 0;  // the guest may hold only the placeholder
  HttpRequestParser parser;
  auto parsed = parser.parse(text);
  if (parsed.state != ParseState::Done) return 0;

  FlowFacts facts;
  facts.tls = flags & 1;
  facts.port = (flags & 2) ? 8080 : (facts.tls ? 443 : 80);
  if (flags & 4) facts.dns_name = (flags & 8) ? "api.example.com" : "other.allowed.test";
  if (facts.tls && (flags & 16)) facts.sni = (flags & 8) ? "api.example.com" : "evil.test";

  const bool scoped = flags & 64;
  const EgressPolicy& p = policy(flags & 32, scoped);
  auto interpreted = p.interpret(parsed.head, facts);
  auto* request = std::get_if<HttpRequest>(&interpreted);
  if (!request) return 0;
  // The guest never writes the value itself here, so any value found after
  // authorize() came from substitution.
  check(!contains_value(*request));
  const std::string path_before = request->path();
  auto verdict = p.authorize(*request);
  if (!std::holds_alternative<Authorization>(verdict)) return 0;
  if (request->host != "api.example.com") check(!contains_value(*request));
  check(request->path() == path_before);  // paths are never substituted
  if (!(flags & 32)) check(request->target.find(kValue) == std::string::npos);
  if (scoped && contains_value(*request)) {
    // Substituted only inside the scope, never through a path an upstream could re-read.
    check(request->method == "GET" && path_before.rfind("/v1/", 0) == 0);
    std::string lower = path_before;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char* tricky : {"/../", "/./", "%2e", "%2f", "%5c", "\\"})
      check(lower.find(tricky) == std::string::npos);
  }
  // The reflection guard: an upstream echoing any header it received hands
  // back no value, however the echo is split.
  const ReflectionGuard guard(std::get<Authorization>(verdict).reflections);
  for (const auto& h : request->headers.list()) {
    const std::string whole = guard.scrub(h.value);
    check(whole.find(kValue) == std::string::npos);
    ReflectionGuard stream = guard;
    std::string echoed;
    stream.feed(std::string_view(h.value).substr(0, h.value.size() / 2), echoed);
    stream.feed(std::string_view(h.value).substr(h.value.size() / 2), echoed);
    stream.flush(echoed);
    check(echoed == whole);
  }
  return 0;
}
