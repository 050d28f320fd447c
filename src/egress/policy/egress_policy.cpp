#include "egress/policy/egress_policy.h"

#include "config/test_knobs.h"
#include "gondolin/error.h"

namespace gondolin::egress {
namespace {

Denial deny(int status, std::string rule, std::string reason) {
  return Denial{status, std::move(rule), std::move(reason)};
}

// A guest-supplied name for a message, cut at 200 bytes. (Not `quoted`: ADL would
// find std::quoted for std::string arguments wherever <iomanip> is included.)
std::string in_quotes(std::string_view s) { return "\"" + std::string(s.substr(0, 200)) + "\""; }

}  // namespace

EgressPolicy::EgressPolicy(const NetworkOptions& o, std::vector<RevokedSecret> revoked)
    : allow_all_(o.allow_all_hosts),
      secrets_in_query_(o.secrets_in_query),
      websockets_(o.websockets),
      secrets_(o.secrets, std::move(revoked)) {
  for (const auto& p : o.allow_hosts) allow_.add(p);
  for (const auto& p : o.deny_hosts) deny_.add(p);
  for (const auto& p : o.allow_internal_hosts) internal_.add(p);
  for (const auto& h : config::test_knobs(o).loopback_hosts) {
    auto n = normalize_host(h);
    if (!n) throw Error(ErrorKind::Usage, "invalid test loopback host '" + h + "'");
    test_loopback_.insert(*n);
  }
}

std::variant<HttpRequest, Denial> EgressPolicy::interpret(const RequestHead& head, const FlowFacts& flow) const {
  if (iequals(head.method, "CONNECT"))
    return deny(405, "connect-method", "CONNECT is not allowed: requests go to their hosts directly");

  HttpRequest r;
  r.flow_id = flow.flow_id;
  r.scheme = flow.tls ? "https" : "http";
  r.method = head.method;
  r.port = flow.port;
  r.has_body = head.framing != BodyFraming::None;

  std::optional<HostPort> host;
  if (auto h = head.headers.get("host")) {
    host = parse_authority(*h);
    if (!host) return deny(400, "bad-request", "invalid Host header " + in_quotes(*h));
  } else if (flow.dns_name) {  // HTTP/1.0 without Host: the name the guest resolved
    host = HostPort{*flow.dns_name, std::nullopt};
  } else if (flow.sni) {
    host = HostPort{*flow.sni, std::nullopt};
  } else {
    return deny(400, "bad-request", "the request has no Host header");
  }

  const std::string& t = head.target;
  if (t == "*") {
    if (!iequals(head.method, "OPTIONS")) return deny(400, "bad-request", "asterisk target outside OPTIONS");
    r.target = "*";
  } else if (!t.empty() && t[0] == '/') {
    r.target = t;
  } else {
    // Absolute form: the scheme must be the connection's, the authority the Host's.
    std::size_t sep = t.find("://");
    if (sep == std::string::npos) return deny(400, "bad-request", "invalid request target");
    std::string scheme = to_lower(std::string_view(t).substr(0, sep));
    if (scheme != r.scheme)
      return deny(400, "bad-request",
                  "request target scheme " + in_quotes(scheme) + " on an " + r.scheme + " connection");
    std::size_t path = t.find_first_of("/?", sep + 3);
    std::string_view authority =
        std::string_view(t).substr(sep + 3, path == std::string::npos ? std::string::npos : path - sep - 3);
    if (authority.find('@') != std::string_view::npos)
      return deny(400, "bad-request", "user info in the request target");
    auto target_host = parse_authority(authority);
    if (!target_host) return deny(400, "bad-request", "invalid host in the request target");
    if (target_host->host != host->host || target_host->port.value_or(flow.port) != host->port.value_or(flow.port))
      return deny(403, "host-mismatch",
                  "request target names host " + in_quotes(target_host->host) + " but the Host header says " +
                      in_quotes(host->host));
    r.target = path == std::string::npos ? "/" : (t[path] == '?' ? "/" + t.substr(path) : t.substr(path));
  }

  if (host->port && *host->port != flow.port)
    return deny(403, "host-mismatch",
                "Host header names port " + std::to_string(*host->port) + " but the connection is to port " +
                    std::to_string(flow.port));
  if (flow.sni && *flow.sni != host->host)
    return deny(403, "sni-mismatch",
                "TLS server name " + in_quotes(*flow.sni) + " does not match Host " + in_quotes(host->host));
  if (flow.dns_name && *flow.dns_name != host->host)
    return deny(403, "host-mismatch",
                "Host " + in_quotes(host->host) + " does not match the name the guest connected to (" +
                    in_quotes(*flow.dns_name) + ")");
  if (head.websocket_upgrade && !websockets_)
    return deny(403, "websockets-disabled", "WebSocket upgrades are disabled");
  r.host = host->host;

  // Hooks and upstream see end-to-end headers only; the host re-frames.
  for (const auto& h : head.headers.list()) {
    if (iequals(h.name, "host") || is_hop_by_hop_header(h.name)) continue;
    bool named_in_connection = false;
    for (const auto& tok : head.connection_tokens)
      if (iequals(h.name, tok)) named_in_connection = true;
    if (named_in_connection) continue;
    r.headers.list().push_back(h);
  }
  return r;
}

std::optional<Denial> EgressPolicy::denied_host(const std::string& host) const {
  if (const HostPattern* p = deny_.match(host))
    return deny(403, "deny-host", "host " + in_quotes(host) + " is denied (" + p->text() + ")");
  return std::nullopt;
}

std::optional<Denial> EgressPolicy::check_allowlist(const std::string& host, std::string& rule) const {
  if (const HostPattern* p = allow_.match(host)) {
    rule = "allow-host " + p->text();
    return std::nullopt;
  }
  if (allow_all_) {
    rule = "allow-all-hosts";
    return std::nullopt;
  }
  return deny(403, "not-in-allowlist", "host " + in_quotes(host) + " is not in the allowlist");
}

std::variant<Authorization, Denial> EgressPolicy::authorize(HttpRequest& request) const {
  Authorization a;
  auto normalized = normalize_host(request.host);
  if (!normalized) return deny(400, "bad-request", "invalid host " + in_quotes(request.host));
  request.host = *normalized;
  if (auto d = denied_host(request.host)) return *d;
  std::optional<Denial> unlisted = check_allowlist(request.host, a.rule);
  SubstitutionResult s = secrets_.substitute(request, secrets_in_query_);
  // Outside the allowlist, only a placeholder for this very host opens it;
  // one used outside its scope, or revoked, is reported as such.
  if (unlisted && (s.blocked_rule == "secret-host" || (!s.blocked() && s.substituted.empty()))) return *unlisted;
  if (s.blocked_rule == "secret-host")
    return deny(403, "secret-host",
                "secret " + s.blocked_secret + " may not be sent to host " + in_quotes(request.host));
  if (s.blocked_rule == "secret-scope")
    return deny(403, "secret-scope",
                "secret " + s.blocked_secret + " may not be sent in " + in_quotes(request.method) + " " +
                    in_quotes(request.path()) + " (outside its scope)");
  if (s.blocked()) return deny(403, s.blocked_rule, "secret " + s.blocked_secret + " was revoked");
  if (unlisted) {  // reachable only through the secrets it carries
    a.rule = "secret-host";
    for (const auto& name : s.substituted) a.rule += " " + name;
  }
  a.secrets = std::move(s.substituted);
  a.reflections = std::move(s.reflections);
  return a;
}

}  // namespace gondolin::egress
