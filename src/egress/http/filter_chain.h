// The decisions on one HTTP exchange, as a chain of filters (Envoy's model:
// listener -> filter chain -> upstream). HttpSession parses a request head,
// runs the request filters in order, and only a request every filter let
// through goes upstream; each response head runs through the filters again
// before the guest sees it. A filter continues, stops the exchange with a
// refusal (status, rule and reason for the egress log), or answers it
// itself (a response made on the host).
//
// The chain, in order:
//   interpret  - the head against the connection: CONNECT, Host syntax,
//                absolute targets, SNI and DNS name agreement, WebSockets;
//                builds the HttpRequest the later filters see
//   hooks      - the embedder's HttpHooks (on_request, on_response)
//   authorize  - the host allowlist, then secret placeholders substituted
//                for allowed hosts (EgressPolicy::authorize)
//   reflection - for requests that carry secrets: asks for an unencoded
//                response, refuses an encoded one, and arms the guard that
//                puts placeholders back where the response echoes a value
//                (head here; the body in HttpSession's BodyRelay)
// A new policy feature is one more filter.
//
// Filters run on the VM's io thread and must not block.
#pragma once

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "egress/http/http_message.h"
#include "egress/policy/egress_policy.h"
#include "egress/policy/reflection_guard.h"
#include "gondolin/http_hooks.h"

namespace gondolin::egress {

struct EgressContext;

// One request as it passes the filters.
struct Exchange {
  const FlowFacts* flow = nullptr;  // the connection it came on
  RequestHead head;                 // as the guest sent it
  HttpRequest request;              // as it will be forwarded (after interpret)
  bool interpreted = false;
  std::string rule;                        // the allow rule, for the egress log
  std::vector<std::string> secrets;        // names substituted into the request
  std::vector<Reflection> reflections;     // what substitution inserted
  std::shared_ptr<ReflectionGuard> guard;  // set when the response must be scrubbed
};

struct Continue {};
// What a request filter decides: go on, refuse, or answer on the host.
using FilterVerdict = std::variant<Continue, Denial, HttpResponse>;

class ExchangeFilter {
 public:
  virtual ~ExchangeFilter() = default;
  virtual FilterVerdict on_request(Exchange& x) = 0;
  // An upstream response head (status >= 200) before the guest sees it; a
  // Denial fails the exchange (its status goes to the guest).
  virtual std::optional<Denial> on_response(Exchange&, HttpResponse&) { return std::nullopt; }
};

class FilterChain {
 public:
  // interpret -> hooks (if the context has any) -> authorize -> reflection.
  explicit FilterChain(const EgressContext& ctx);
  FilterVerdict on_request(Exchange& x) const;
  std::optional<Denial> on_response(Exchange& x, HttpResponse& response) const;

 private:
  std::vector<std::unique_ptr<ExchangeFilter>> filters_;
};

// Puts placeholders back into header values that echo a secret.
void scrub_headers(const ReflectionGuard& guard, HttpHeaders& headers);

}  // namespace gondolin::egress
