// The egress side of one VM's network: receives every classified guest TCP
// flow from the stack and decides what happens to it. HTTP and HTTPS go
// through the policy and proxy; SSH goes to the SSH proxy when SSH egress is
// configured; flows to a mapped name (--tcp-map) are relayed raw to the
// host's chosen upstream; anything else is refused (and logged). Also owns
// the ingress listeners (--listen).
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "egress/egress_context.h"
#include "egress/tcp/ingress_listeners.h"
#include "gondolin/live_policy.h"
#include "gondolin/net_policy.h"
#include "net/guest_flow.h"

namespace gondolin::egress {

class SshProxy;

class EgressService final : public net::EgressHandlers {
 public:
  // Validates the options and loads (or creates, once) the per-user MITM CA.
  // Throws gondolin::Error naming what is wrong. Handlers run on `io`'s thread.
  EgressService(boost::asio::io_context& io, const NetworkOptions& options);
  ~EgressService() override;

  void on_http(net::GuestFlow flow) override;
  void on_tls(net::GuestFlow flow) override;
  void on_ssh(net::GuestFlow flow) override;
  void on_other(net::GuestFlow flow) override;
  bool is_mapped(const net::GuestFlowInfo& info) const override;
  void on_mapped(net::GuestFlow flow) override;

  // Ingress: the listeners are bound by the constructor; this starts
  // forwarding their connections through `dial` (on the io thread). Calling
  // it again replaces the dialer (a VM whose network was restarted).
  void start_ingress(GuestPortDialer dial);
  // Where the ingress listeners are bound, in the order of options.ingress.
  std::vector<boost::asio::ip::tcp::endpoint> ingress_endpoints() const;

  // NAME=GONDOLIN_SECRET_<random> for each secret: goes into every exec's
  // environment. io thread (or before the io thread runs).
  std::vector<std::pair<std::string, std::string>> guest_env() const;
  // The policy as it stands and live changes to it (egress/live_policy.h); io thread.
  PolicyState policy_state() const;
  PolicyState change_policy(const PolicyChange& change, uid_t uid);
  // Secrets removed while the VM ran, with their placeholders (for
  // snapshots), and their restoration on resume; io thread.
  std::vector<RevokedSecret> revoked_secrets() const;
  void restore_revoked_secrets(std::vector<RevokedSecret> revoked);
  // The MITM CA certificate (PEM) the guest must trust. Never the key.
  const std::string& ca_certificate_pem() const;
  // known_hosts lines for the SSH proxy's host key (empty without SSH egress).
  std::vector<std::string> guest_ssh_known_hosts() const;

 private:
  void refuse(net::GuestFlow& flow, const char* kind, const std::string& rule, const std::string& reason);
  // One of the capped guest connections for this flow, or nullopt (flow refused and logged).
  std::optional<GuestSlot> admit(net::GuestFlow& flow, const char* kind);
  std::shared_ptr<EgressContext> ctx_;
  std::unique_ptr<IngressListeners> ingress_;
  std::unique_ptr<SshProxy> ssh_;  // with SSH egress only
};

}  // namespace gondolin::egress
