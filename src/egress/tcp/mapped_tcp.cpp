#include "egress/tcp/mapped_tcp.h"

#include "config/tcp_rules.h"
#include "egress/tcp/byte_relay.h"
#include "egress/upstream_connector.h"

namespace gondolin::egress {
namespace {

std::string dotted(const net::Ipv4& a) {
  return std::to_string(a[0]) + "." + std::to_string(a[1]) + "." + std::to_string(a[2]) + "." + std::to_string(a[3]);
}

// A mapped connection to a name, under live policy: denying the name
// (gondolin policy ID deny) ends it. Lives as long as its relay's `done`.
class MappedFlowBinding : public PolicyBoundFlow {
 public:
  explicit MappedFlowBinding(std::string host) : host_(std::move(host)) {}
  void bind(const std::weak_ptr<ByteRelay>& relay) { relay_ = relay; }
  bool recheck(const EgressPolicy& policy) override {
    auto relay = relay_.lock();
    if (!relay || !policy.denied_host(host_)) return false;
    relay->abort("policy-change: host " + host_ + " is denied");
    return true;
  }

 private:
  std::string host_;
  std::weak_ptr<ByteRelay> relay_;
};

}  // namespace

void relay_mapped_flow(const std::shared_ptr<EgressContext>& ctx, const TcpMap& rule, net::GuestFlow flow) {
  const EgressEvent base =
      EgressEvent::for_flow(flow.info.flow_id, "tcp", flow.info.hostname.value_or(dotted(flow.info.dest_ip)),
                            flow.info.dest_port, "tcp-map " + config::describe(rule));
  // The deny list covers mapped names too (--deny-host, live denials).
  const std::optional<std::string> name = flow.info.hostname;
  if (name)
    if (auto d = ctx->policy.denied_host(*name)) {
      EgressEvent denied = base.decided("deny", d->reason);
      denied.rule = d->rule;
      ctx->log.record(denied);
      boost::system::error_code ignored;
      flow.socket.close(ignored);
      return;
    }
  // Held while connecting; whatever the guest sends meanwhile waits in the
  // socket (bounded by its buffer and the guest's TCP window).
  auto guest = std::make_shared<GuestSocket>(std::move(flow.socket));
  UpstreamTarget target;
  target.host = rule.upstream_host;
  target.port = rule.upstream_port;
  target.host_named = true;
  connect_upstream(ctx, target,
                   [ctx, guest, base, name](std::unique_ptr<UpstreamConnection> up, const UpstreamFailure& failure) {
                     if (!up) {
                       ctx->log.record(base.decided("error", failure.rule + ": " + failure.reason));
                       boost::system::error_code ignored;
                       guest->close(ignored);
                       return;
                     }
                     EgressEvent opened = base.decided("allow", "", "open");
                     opened.upstream = up->peer;
                     ctx->log.record(opened);
                     // The upstream slot is given back when the relay ends.
                     auto slot = std::make_shared<UpstreamSlot>(std::move(up->slot));
                     auto binding = name ? std::make_shared<MappedFlowBinding>(*name) : nullptr;
                     auto relay = ByteRelay::start(
                         make_plain_stream(std::move(*guest)), std::move(up->stream), std::string(),
                         [ctx, opened, slot, binding](const ByteRelay::Totals& t) mutable {
                           // a: the guest, b: upstream
                           ctx->log.record(opened.closed(t.b_to_a, t.a_to_b, t.error));
                           *slot = UpstreamSlot();
                         },
                         ByteRelay::IdleTimeout{ctx->io.get_executor(), ctx->options.tcp_idle_timeout});
                     if (binding) {
                       binding->bind(relay);
                       ctx->bind_flow(binding);
                     }
                   });
}

}  // namespace gondolin::egress
