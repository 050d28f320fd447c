#include "egress/live_policy.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "gondolin/error.h"
#include "util/append_once.h"
#include "util/logging.h"
#include "util/utc_time.h"

namespace gondolin::egress {
namespace {

// Revoked placeholders are kept for the VM's life; this bounds the list a
// script looping on `secret set`/`secret rm` can grow.
constexpr std::size_t kMaxRevoked = 4096;

// The options with each secret's placeholder as the guest holds it.
NetworkOptions current_options(const EgressContext& ctx) {
  NetworkOptions o = ctx.options;
  for (const auto& [name, placeholder] : ctx.policy.secrets().guest_env())
    for (auto& s : o.secrets)
      if (s.name == name) s.placeholder = placeholder;
  return o;
}

void remove_all(std::vector<std::string>& list, const std::string& item) {
  list.erase(std::remove(list.begin(), list.end(), item), list.end());
}

std::vector<HostSecret>::iterator find_secret(NetworkOptions& o, const std::string& name) {
  return std::find_if(o.secrets.begin(), o.secrets.end(), [&](const HostSecret& s) { return s.name == name; });
}

// Applies `change` to `o` (and `revoked`); returns the log's description.
std::string edit(NetworkOptions& o, std::vector<RevokedSecret>& revoked, const PolicyChange& change) {
  switch (change.kind) {
    case PolicyChange::Kind::AllowHost:
      append_once(o.allow_hosts, change.pattern);
      remove_all(o.deny_hosts, change.pattern);
      return "allow-host " + change.pattern;
    case PolicyChange::Kind::DenyHost:
      append_once(o.deny_hosts, change.pattern);
      remove_all(o.allow_hosts, change.pattern);
      return "deny-host " + change.pattern;
    case PolicyChange::Kind::SetSecret: {
      HostSecret s = change.secret;
      auto it = find_secret(o, s.name);
      if (it == o.secrets.end()) {
        s.placeholder.clear();  // a new secret gets a fresh placeholder
        o.secrets.push_back(std::move(s));
        return "secret-set " + change.secret.name;
      }
      s.placeholder = it->placeholder;  // the guest holds it: it keeps its shape too
      s.placeholder_shape = it->placeholder_shape;
      *it = std::move(s);
      return "secret-replace " + change.secret.name;
    }
    case PolicyChange::Kind::RemoveSecret: {
      auto it = find_secret(o, change.secret.name);
      if (it == o.secrets.end()) throw Error(ErrorKind::Usage, "no secret named " + change.secret.name);
      if (revoked.size() >= kMaxRevoked) throw Error(ErrorKind::Usage, "too many revoked secrets");
      revoked.push_back(RevokedSecret{it->name, it->placeholder});
      o.secrets.erase(it);
      return "secret-remove " + change.secret.name;
    }
  }
  throw Error(ErrorKind::Usage, "unknown policy change");
}

void log_change(EgressContext& ctx, const std::string& what, uid_t uid, std::size_t closed) {
  nlohmann::json j;
  j["time"] = now_rfc3339_ms();
  j["kind"] = "policy";
  j["event"] = "change";
  j["change"] = what;
  j["uid"] = uid;
  j["closed_flows"] = closed;
  ctx.log.write_line(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  log().info("egress policy: {} (by uid {}; {} open flow(s) closed)", what, uid, closed);
}

std::size_t recheck_flows(EgressContext& ctx) {
  std::size_t closed = 0;
  std::vector<std::weak_ptr<PolicyBoundFlow>> live;
  for (auto& weak : ctx.bound_flows)
    if (auto flow = weak.lock()) {
      if (flow->recheck(ctx.policy)) {
        ++closed;
      } else {
        live.push_back(weak);
      }
    }
  ctx.bound_flows = std::move(live);
  return closed;
}

}  // namespace

PolicyState policy_state(const EgressContext& ctx) {
  PolicyState st;
  const NetworkOptions o = current_options(ctx);
  st.allow_hosts = o.allow_hosts;
  st.deny_hosts = o.deny_hosts;
  st.allow_internal_hosts = o.allow_internal_hosts;
  st.allow_all_hosts = o.allow_all_hosts;
  for (const auto& s : o.secrets) st.secrets.push_back({s.name, s.hosts, s.methods, s.path_prefixes, s.placeholder});
  for (const auto& r : ctx.revoked_secrets) append_once(st.revoked_secrets, r.name);
  return st;
}

void restore_revoked_secrets(EgressContext& ctx, std::vector<RevokedSecret> revoked) {
  if (revoked.size() > kMaxRevoked) throw Error(ErrorKind::Usage, "too many revoked secrets");
  for (const auto& r : revoked) {
    const bool plain = !r.placeholder.empty() && r.placeholder.size() <= 512 &&
                       r.placeholder.find_first_not_of(
                           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == std::string::npos;
    if (r.name.empty() || r.name.size() > 256 || !plain)
      throw Error(ErrorKind::Usage, "revoked secret '" + r.name.substr(0, 64) + "' has an invalid placeholder");
  }
  EgressPolicy fresh(current_options(ctx), revoked);
  ctx.policy = std::move(fresh);
  ctx.revoked_secrets = std::move(revoked);
}

PolicyState change_policy(EgressContext& ctx, const PolicyChange& change, uid_t uid) {
  NetworkOptions next = current_options(ctx);
  std::vector<RevokedSecret> revoked = ctx.revoked_secrets;
  const std::string what = edit(next, revoked, change);
  EgressPolicy fresh(next, revoked);  // validates the whole result
  ctx.options = std::move(next);
  ctx.policy = std::move(fresh);
  ctx.revoked_secrets = std::move(revoked);
  log_change(ctx, what, uid, recheck_flows(ctx));
  return policy_state(ctx);
}

}  // namespace gondolin::egress
