// What the guest may send where, decided on parsed requests. Pure: no I/O,
// so every rule is unit-tested without sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "egress/http/http_message.h"
#include "egress/policy/host_pattern.h"
#include "egress/policy/secret_store.h"
#include "gondolin/net_policy.h"

namespace gondolin::egress {

// A refusal: what the guest is told (status, "gondolin: <reason>") and the
// rule name that goes in the egress log.
struct Denial {
  int status = 403;
  std::string rule;
  std::string reason;
};

// What the stack knows about the connection a request arrived on.
struct FlowFacts {
  std::uint64_t flow_id = 0;
  bool tls = false;
  std::uint16_t port = 0;               // the port the guest dialled
  std::optional<std::string> dns_name;  // normalized name behind the dialled address
  std::optional<std::string> sni;       // normalized TLS server name (tls only)
};

struct Authorization {
  std::string rule;                     // "allow-host <pattern>", "allow-all-hosts" or "secret-host <NAME>"
  std::vector<std::string> secrets;     // names substituted
  std::vector<Reflection> reflections;  // see SubstitutionResult
};

class EgressPolicy {
 public:
  // Validates everything; throws gondolin::Error (Usage) naming the bad item.
  // `revoked`: secrets removed from a running VM, whose placeholders are refused.
  explicit EgressPolicy(const NetworkOptions& options, std::vector<RevokedSecret> revoked = {});

  // Checks the head against the connection (CONNECT, Host syntax, absolute
  // targets, SNI and DNS name agreement, websockets) and builds the request
  // hooks and upstream see.
  std::variant<HttpRequest, Denial> interpret(const RequestHead& head, const FlowFacts& flow) const;

  // The deny list, the allowlist and the secrets, for a request about to go
  // upstream. Substitutes placeholders in `request` when allowed. A request
  // to a host outside the allowlist is allowed when it carries a placeholder
  // of a secret for that host (and nothing it may not carry).
  std::variant<Authorization, Denial> authorize(HttpRequest& request) const;

  // Host-level checks alone (no secrets). The deny list: a Denial (rule
  // "deny-host") if `host` is on it. The allowlist: nullopt if `host` is on
  // it or all hosts are allowed, with the allow rule in `rule`.
  std::optional<Denial> denied_host(const std::string& host) const;
  std::optional<Denial> check_allowlist(const std::string& host, std::string& rule) const;

  bool is_test_loopback(const std::string& host) const { return test_loopback_.count(host) != 0; }
  // allow_internal_hosts: `host` may resolve to an internal address.
  bool may_be_internal(const std::string& host) const { return internal_.match(host) != nullptr; }
  bool websockets() const { return websockets_; }
  const SecretStore& secrets() const { return secrets_; }

 private:
  HostPatternList allow_;
  HostPatternList deny_;
  HostPatternList internal_;
  bool allow_all_ = false;
  bool secrets_in_query_ = false;
  bool websockets_ = true;
  std::set<std::string> test_loopback_;
  SecretStore secrets_;
};

}  // namespace gondolin::egress
