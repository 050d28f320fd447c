#include "egress/tcp/mapped_tcp.h"

#include "config/tcp_rules.h"
#include "egress/tcp/byte_relay.h"
#include "egress/upstream_connector.h"

namespace gondolin::egress {
namespace {

std::string dotted(const net::Ipv4& a) {
  return std::to_string(a[0]) + "." + std::to_string(a[1]) + "." + std::to_string(a[2]) + "." + std::to_string(a[3]);
}

}  // namespace

void relay_mapped_flow(const std::shared_ptr<EgressContext>& ctx, const TcpMap& rule, net::GuestFlow flow) {
  const EgressEvent base =
      EgressEvent::for_flow(flow.info.flow_id, "tcp", flow.info.hostname.value_or(dotted(flow.info.dest_ip)),
                            flow.info.dest_port, "tcp-map " + config::describe(rule));
  // Held while connecting; whatever the guest sends meanwhile waits in the
  // socket (bounded by its buffer and the guest's TCP window).
  auto guest = std::make_shared<GuestSocket>(std::move(flow.socket));
  UpstreamTarget target;
  target.host = rule.upstream_host;
  target.port = rule.upstream_port;
  target.host_named = true;
  connect_upstream(ctx, target,
                   [ctx, guest, base](std::unique_ptr<UpstreamConnection> up, const UpstreamFailure& failure) {
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
                     ByteRelay::start(
                         make_plain_stream(std::move(*guest)), std::move(up->stream), std::string(),
                         [ctx, opened, slot](const ByteRelay::Totals& t) mutable {
                           // a: the guest, b: upstream
                           ctx->log.record(opened.closed(t.b_to_a, t.a_to_b, t.error));
                           *slot = UpstreamSlot();
                         },
                         ByteRelay::IdleTimeout{ctx->io.get_executor(), ctx->options.tcp_idle_timeout});
                   });
}

}  // namespace gondolin::egress
