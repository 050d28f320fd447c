// Secrets the guest may use without seeing them. Each secret gets a random
// placeholder (GONDOLIN_SECRET_<32 hex>, or the secret's own shape) that goes into the guest's
// environment; the host swaps the real value in when a request carrying the
// placeholder goes to one of the secret's hosts (within the secret's methods
// and path prefixes, if it has them), and refuses the request when it goes
// anywhere else. A secret removed from a running VM leaves its placeholder
// behind as revoked: a request carrying it is refused.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "egress/policy/host_pattern.h"
#include "egress/policy/reflection_guard.h"
#include "gondolin/http_hooks.h"
#include "gondolin/net_policy.h"

namespace gondolin::egress {

struct SubstitutionResult {
  // Set when a placeholder may not go in this request: "secret-host" (not
  // one of its hosts), "secret-scope" (method or path outside its scope),
  // "secret-revoked" (removed while the VM ran).
  std::string blocked_rule;
  std::string blocked_secret;            // the secret's name
  std::vector<std::string> substituted;  // names, each once, in first-use order
  // What the host inserted and what the guest had sent in its place (the
  // value and the placeholder; their query encodings; a whole Basic
  // credential before and after), for the response's reflection guard.
  std::vector<Reflection> reflections;
  bool blocked() const { return !blocked_rule.empty(); }
};

struct RevokedSecret {
  std::string name;
  std::string placeholder;
};

class SecretStore {
 public:
  // Validates names, values and host patterns; throws gondolin::Error (Usage).
  explicit SecretStore(const std::vector<HostSecret>& secrets, std::vector<RevokedSecret> revoked = {});

  // NAME=placeholder for every secret, for the guest environment.
  std::vector<std::pair<std::string, std::string>> guest_env() const;
  bool empty() const { return secrets_.empty(); }
  // Whether the secret `name` exists and may go to `host`.
  bool allows(const std::string& name, const std::string& host) const;

  // Replaces placeholders in `request` for its host: in header values
  // (inside base64 for Basic authorization too) and, if `in_query`, in the
  // query string (percent-encoded). Never in the path or the body. A
  // placeholder that may not go in this request (see SubstitutionResult)
  // blocks the whole request and leaves it unchanged.
  SubstitutionResult substitute(HttpRequest& request, bool in_query) const;

 private:
  struct Secret {
    std::string name;
    HostPatternList hosts;
    std::string value;
    std::string placeholder;
    std::vector<std::string> methods;
    std::vector<std::string> path_prefixes;
  };
  // Where the first placeholder (live or revoked) at or after `from` starts;
  // pos is npos if there is none. A revoked one wins a tie.
  struct Hit {
    std::size_t pos = std::string::npos;
    std::size_t size = 0;
    const Secret* secret = nullptr;
    const RevokedSecret* revoked = nullptr;
  };
  Hit next_placeholder(std::string_view text, std::size_t from) const;
  // Rewrites placeholders in `text` (percent-encoding values if `url_encode`);
  // false if one of them may not go in `request`.
  bool rewrite(std::string& text, const HttpRequest& request, bool url_encode, SubstitutionResult& result) const;
  // Why `s` may not go in `request` ("secret-host", "secret-scope"), or empty.
  static std::string_view refusal(const Secret& s, const HttpRequest& request);

  std::vector<Secret> secrets_;
  std::vector<RevokedSecret> revoked_;
};

}  // namespace gondolin::egress
