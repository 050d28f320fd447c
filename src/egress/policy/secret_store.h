// Secrets the guest may use without seeing them. Each secret gets a random
// placeholder (GONDOLIN_SECRET_<32 hex>) that goes into the guest's
// environment; the host swaps the real value in when a request carrying the
// placeholder goes to one of the secret's hosts, and refuses the request when
// it goes anywhere else.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "egress/policy/host_pattern.h"
#include "gondolin/http_hooks.h"
#include "gondolin/net_policy.h"

namespace gondolin::egress {

inline constexpr std::string_view kPlaceholderPrefix = "GONDOLIN_SECRET_";

struct SubstitutionResult {
  bool blocked = false;
  std::string blocked_secret;            // name of the secret that may not go to this host
  std::vector<std::string> substituted;  // names, each once, in first-use order
};

class SecretStore {
 public:
  // Validates names, values and host patterns; throws gondolin::Error (Usage).
  explicit SecretStore(const std::vector<HostSecret>& secrets);

  // NAME=placeholder for every secret, for the guest environment.
  std::vector<std::pair<std::string, std::string>> guest_env() const;
  bool empty() const { return secrets_.empty(); }

  // Replaces placeholders in `request` for its host: in header values
  // (inside base64 for Basic authorization too) and, if `in_query`, in the
  // query string (percent-encoded). Never in the path or the body. A
  // placeholder of a secret not allowed for the host blocks the whole
  // request and leaves it unchanged.
  SubstitutionResult substitute(HttpRequest& request, bool in_query) const;

 private:
  struct Secret {
    std::string name;
    HostPatternList hosts;
    std::string value;
    std::string placeholder;
  };
  // Rewrites placeholders in `text` (percent-encoding values if `url_encode`);
  // false if one of them is not allowed for `host`.
  bool rewrite(std::string& text, std::string_view host, bool url_encode, SubstitutionResult& result) const;

  std::vector<Secret> secrets_;
};

}  // namespace gondolin::egress
