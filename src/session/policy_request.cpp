#include "session/policy_request.h"

namespace gondolin::session {

proto::SessionPolicyRequest policy_request(const std::optional<PolicyChange>& change) {
  proto::SessionPolicyRequest r;
  if (!change) return r;
  r.op = static_cast<std::uint8_t>(change->kind);
  r.pattern = change->pattern;
  r.secret_name = change->secret.name;
  r.hosts = change->secret.hosts;
  r.methods = change->secret.methods;
  r.path_prefixes = change->secret.path_prefixes;
  r.value = change->secret.value;
  return r;
}

std::optional<PolicyChange> policy_change(const proto::SessionPolicyRequest& r) {
  if (r.op == 0) return std::nullopt;  // valid() bounds op to 0..4
  PolicyChange c;
  c.kind = static_cast<PolicyChange::Kind>(r.op);
  c.pattern = r.pattern;
  c.secret.name = r.secret_name;
  c.secret.hosts = r.hosts;
  c.secret.methods = r.methods;
  c.secret.path_prefixes = r.path_prefixes;
  c.secret.value = r.value;
  return c;
}

}  // namespace gondolin::session
