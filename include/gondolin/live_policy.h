// Changing a running VM's HTTP/HTTPS policy (Vm::change_policy, `gondolin
// policy ID ...`). A change applies to the next request; connections whose
// host or secrets the change takes away are closed at once (keep-alive,
// TLS and WebSocket flows alike); a removed secret's placeholder is refused
// from then on (403, rule "secret-revoked"). Each change is one line in the
// egress log naming the uid that made it. docs/egress.md#live-policy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gondolin/net_policy.h"

namespace gondolin {

struct PolicyChange {
  enum class Kind : std::uint8_t {
    AllowHost = 1,     // add `pattern` to allow_hosts (and drop it from deny_hosts)
    DenyHost = 2,      // add `pattern` to deny_hosts (and drop it from allow_hosts)
    SetSecret = 3,     // add or replace `secret` (an existing one keeps its placeholder)
    RemoveSecret = 4,  // remove the secret named secret.name; its placeholder is revoked
  };
  Kind kind = Kind::AllowHost;
  std::string pattern;
  HostSecret secret;

  static PolicyChange allow_host(std::string pattern) { return {Kind::AllowHost, std::move(pattern), {}}; }
  static PolicyChange deny_host(std::string pattern) { return {Kind::DenyHost, std::move(pattern), {}}; }
  static PolicyChange set_secret(HostSecret secret) { return {Kind::SetSecret, {}, std::move(secret)}; }
  static PolicyChange remove_secret(std::string name) {
    HostSecret s;
    s.name = std::move(name);
    return {Kind::RemoveSecret, {}, std::move(s)};
  }
};

// The policy as it stands. Never holds a secret's value.
struct PolicyState {
  struct Secret {
    std::string name;
    std::vector<std::string> hosts, methods, path_prefixes;
    std::string placeholder;  // what the guest's $NAME holds
  };
  std::vector<std::string> allow_hosts;
  std::vector<std::string> deny_hosts;
  std::vector<std::string> allow_internal_hosts;
  bool allow_all_hosts = false;
  std::vector<Secret> secrets;
  std::vector<std::string> revoked_secrets;  // names removed while the VM ran
};

}  // namespace gondolin
