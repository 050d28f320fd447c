#include "session/policy_request.h"

#include <algorithm>
#include <limits>

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
  r.placeholder_prefix = change->secret.placeholder_shape.prefix;
  // Clamped, not wrapped: an oversized length stays oversized and is refused.
  r.placeholder_length = static_cast<std::uint32_t>(
      std::min<std::size_t>(change->secret.placeholder_shape.length, std::numeric_limits<std::uint32_t>::max()));
  r.placeholder_alphabet = change->secret.placeholder_shape.alphabet;
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
  c.secret.placeholder_shape = {r.placeholder_prefix, r.placeholder_length, r.placeholder_alphabet};
  return c;
}

}  // namespace gondolin::session
