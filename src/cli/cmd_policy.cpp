// `gondolin policy ID show|allow|deny|secret set|secret rm`: the HTTP policy
// of a running session, read and changed through its socket
// (Session::policy, Session::change_policy).
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "config/host_secret_rules.h"
#include "config/policy_state_json.h"
#include "gondolin/error.h"
#include "gondolin/session.h"

namespace gondolin::cli {
namespace {

struct PolicyFlags {
  std::string session;
  bool json = false;
  std::string pattern;
  std::string secret_spec;
  std::string secret_name;
  std::string placeholder;
};

std::string joined(const std::vector<std::string>& items) {
  if (items.empty()) return "(none)";
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

void print_state(const PolicyState& st) {
  std::printf("allow hosts:     %s\n", joined(st.allow_hosts).c_str());
  std::printf("all hosts:       %s\n", st.allow_all_hosts ? "allowed" : "no");
  std::printf("deny hosts:      %s\n", joined(st.deny_hosts).c_str());
  std::printf("internal hosts:  %s\n", joined(st.allow_internal_hosts).c_str());
  for (const auto& s : st.secrets) {
    std::printf("secret %s: hosts %s", s.name.c_str(), joined(s.hosts).c_str());
    if (!s.methods.empty()) std::printf("; methods %s", joined(s.methods).c_str());
    if (!s.path_prefixes.empty()) std::printf("; paths %s", joined(s.path_prefixes).c_str());
    std::printf("; placeholder %s\n", s.placeholder.c_str());
  }
  if (!st.revoked_secrets.empty()) std::printf("revoked secrets: %s\n", joined(st.revoked_secrets).c_str());
}

SessionInfo session_of(const PolicyFlags& f) {
  if (f.session.empty()) throw Error(ErrorKind::Usage, "policy needs a session id (see gondolin list)");
  return Session::find(f.session);
}

// Runs one change and says what it did on stderr.
void change(const PolicyFlags& f, const PolicyChange& c, const std::string& what, Outcome& outcome) {
  SessionInfo s = session_of(f);
  Session::change_policy(s, c);
  std::fprintf(stderr, "gondolin: session %s: %s\n", s.id.substr(0, 12).c_str(), what.c_str());
  outcome.exit_code = 0;
}

}  // namespace

void add_policy_command(CLI::App& app, Outcome& outcome) {
  auto f = std::make_shared<PolicyFlags>();
  auto* policy = app.add_subcommand("policy", "Show or change a running session's HTTP/HTTPS policy");
  policy->add_option("session", f->session, "Session id or unique prefix");
  policy->require_subcommand(1);

  auto* show = policy->add_subcommand("show", "Print the policy (never a secret's value)");
  show->add_flag("--json", f->json, "Machine-readable output");
  show->callback([f, &outcome] {
    PolicyState st = Session::policy(session_of(*f));
    if (f->json)
      std::printf("%s\n", config::policy_state_to_json(st).c_str());
    else
      print_state(st);
    outcome.exit_code = 0;
  });

  auto* allow = policy->add_subcommand("allow", "Allow HTTP/HTTPS to hosts matching PATTERN from the next request on");
  allow->add_option("pattern", f->pattern, "Host pattern ('*' wildcards)")->required();
  allow->callback(
      [f, &outcome] { change(*f, PolicyChange::allow_host(f->pattern), "allowed " + f->pattern, outcome); });

  auto* deny = policy->add_subcommand("deny", "Deny hosts matching PATTERN and close their open connections");
  deny->add_option("pattern", f->pattern, "Host pattern ('*' wildcards)")->required();
  deny->callback([f, &outcome] { change(*f, PolicyChange::deny_host(f->pattern), "denied " + f->pattern, outcome); });

  auto* secret = policy->add_subcommand("secret", "Add, replace or revoke a secret");
  secret->require_subcommand(1);
  auto* set = secret->add_subcommand("set", "NAME@HOST[,HOST...][:SCOPE][=@FILE|=@-|=VALUE], as --host-secret");
  set->add_option("spec", f->secret_spec, "The secret, as for --host-secret")->required();
  set->add_option("--placeholder", f->placeholder, "A new secret's placeholder shape, as --secret-placeholder takes it")
      ->type_name("PREFIX[:LENGTH[:ALPHABET]]");
  set->callback([f, &outcome] {
    HostSecret s = config::parse_host_secret(f->secret_spec);
    if (!f->placeholder.empty()) s.placeholder_shape = config::parse_placeholder_shape(f->placeholder, "--placeholder");
    std::string name = s.name;
    change(*f, PolicyChange::set_secret(std::move(s)), "secret " + name + " set", outcome);
  });
  auto* rm = secret->add_subcommand("rm", "Remove a secret: its placeholder is refused from now on");
  rm->add_option("name", f->secret_name, "The secret's name")->required();
  rm->callback([f, &outcome] {
    change(*f, PolicyChange::remove_secret(f->secret_name), "secret " + f->secret_name + " revoked", outcome);
  });
}

}  // namespace gondolin::cli
