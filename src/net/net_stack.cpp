#include "net/net_stack.h"

#include <malloc.h>
#include <sys/socket.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "config/dns_rules.h"
#include "gondolin/error.h"
#include "net/arp.h"
#include "net/dhcp_server.h"
#include "net/dns_forwarder.h"
#include "net/dns_message.h"
#include "net/dns_synthetic.h"
#include "net/ethernet.h"
#include "net/flow_dispatcher.h"
#include "net/qemu_net_link.h"
#include "net/slirp_tcp_engine.h"
#include "net/tcp_flow_table.h"
#include "net/tcp_segment.h"
#include "util/logging.h"

namespace gondolin::net {

namespace asio = boost::asio;

namespace {

constexpr auto kGcInterval = std::chrono::seconds(10);

std::vector<DnsServer> upstream_dns_servers(const NetworkOptions& o) {
  if (!o.trusted_dns_servers.empty()) return config::parse_dns_servers(o.trusted_dns_servers);
  auto servers = resolv_conf_servers();
  if (servers.empty())
    throw Error(ErrorKind::Usage, "DNS mode '" + std::string(o.dns == DnsMode::Open ? "open" : "trusted") +
                                      "' needs a resolver: /etc/resolv.conf has no nameserver; give one with "
                                      "--dns-trusted-server IP");
  return servers;
}

// libslirp gives every flow two 128 KiB socket buffers. glibc serves blocks
// that size with mmap (returned to the system on free) until the first free
// of a larger mmapped block raises its threshold; from then on they come
// from the heap, stay resident after a flood and fragment it (measured: a
// refused request, then 300 flows, left 80 MB behind). A fixed threshold
// (which also stops that adjustment) keeps them mmapped. Process-wide, set
// once, by the first network stack.
void keep_flow_buffers_returnable() {
  static std::once_flag once;
  std::call_once(once, [] { ::mallopt(M_MMAP_THRESHOLD, 128 * 1024); });
}

}  // namespace

NetStack::NetStack(asio::io_context& io, const NetworkOptions& options, const EgressFactory& egress,
                   const NetLayout& layout)
    : io_(io), options_(options), layout_(layout), gc_timer_(io) {
  keep_flow_buffers_returnable();
  if (layout_.mtu < 576 || layout_.mtu > 16384) throw Error(ErrorKind::Usage, "guest MTU must be 576..16384");
  if (options_.dns == DnsMode::Synthetic) {
    synthetic_dns_ = std::make_unique<SyntheticDns>(options_.host_mapping, layout_);
  } else {
    dns_forwarder_ = std::make_unique<DnsForwarder>(io_, upstream_dns_servers(options_));
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw Error(ErrorKind::Io, std::string("socketpair: ") + std::strerror(errno));
  qemu_end_.reset(sv[1]);
  // Room for a burst of frames in the kernel before either side waits.
  int buf = 1 << 20;
  ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  ::setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  link_ = std::make_shared<QemuNetLink>(io_, UniqueFd(sv[0]));
  engine_ = std::make_unique<SlirpTcpEngine>(io_, layout_, [this](Bytes f) { on_slirp_frame(f); });
  for (const auto& in : options_.ingress) engine_->open_guest_port(in.guest_port);
  flows_ = std::make_unique<TcpFlowTable>(TcpFlowTable::Limits{},
                                          [this](const FlowKey& k) { engine_->settle(k.dst, k.dst_port); });
  egress_ = egress ? egress(io_, options_) : nullptr;
  if (!egress_) egress_ = std::make_unique<RefuseAllEgress>();
  FlowDispatcher::Limits dispatch_limits;
  dispatch_limits.first_bytes_timeout = options_.classify_timeout;
  dispatcher_ = std::make_unique<FlowDispatcher>(io_, *egress_, dispatch_limits);
}

NetStack::~NetStack() {
  *alive_ = false;
  log().debug(
      "net: {} frames in, {} out; dropped: {} malformed, {} spoofed, {} IPv6, {} fragments, {} UDP, {} other; "
      "{} DHCP replies, {} DNS queries, {} pings, {} flows, {} SYNs refused, {} refusals reset",
      stats_.frames_from_guest, stats_.frames_to_guest, stats_.dropped_malformed, stats_.dropped_spoofed,
      stats_.dropped_ipv6, stats_.dropped_fragments, stats_.dropped_udp, stats_.dropped_other, stats_.dhcp_replies,
      stats_.dns_queries, stats_.icmp_echo_replies, stats_.tcp_flows, stats_.tcp_refused,
      stats_.tcp_resets_for_refusal);
  // Flows being classified, then egress, then slirp (which closes its
  // sockets through callbacks into objects that must still exist).
  dispatcher_.reset();
  egress_.reset();
  dns_forwarder_.reset();
  flows_.reset();
  engine_.reset();
  if (link_) link_->close();
}

std::optional<UniqueFd> NetStack::connect_guest_port(std::uint16_t guest_port, std::string& error) {
  return engine_->connect_guest_port(guest_port, error);
}

UniqueFd NetStack::take_qemu_end() { return std::move(qemu_end_); }

void NetStack::start() {
  link_->start([this](Bytes f) { on_guest_frame(f); }, nullptr, [this] { engine_->set_congested(false); });
  schedule_gc();
}

void NetStack::schedule_gc() {
  gc_timer_.expires_after(kGcInterval);
  gc_timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    flows_->expire(TcpFlowTable::Clock::now());
    schedule_gc();
  });
}

void NetStack::send_to_guest(Bytes frame) {
  ++stats_.frames_to_guest;
  link_->send(frame);
  if (link_->congested()) engine_->set_congested(true);
}

// ---- guest -> host -------------------------------------------------------

void NetStack::on_guest_frame(Bytes frame) {
  ++stats_.frames_from_guest;
  auto eth = parse_ethernet(frame);
  if (!eth) {
    ++stats_.dropped_malformed;
    return;
  }
  if (eth->src != layout_.guest_mac) {
    ++stats_.dropped_spoofed;
    return;
  }
  switch (eth->ether_type) {
    case kEtherTypeArp: return on_arp(eth->payload);
    case kEtherTypeIpv4: return on_ipv4(frame, eth->payload);
    case kEtherTypeIpv6: ++stats_.dropped_ipv6; return;
    default: ++stats_.dropped_other; return;
  }
}

void NetStack::on_arp(Bytes payload) {
  auto arp = parse_arp(payload);
  if (!arp || arp->sender_mac != layout_.guest_mac) {
    ++stats_.dropped_malformed;
    return;
  }
  const Ipv4 target = arp->target_ip;
  if (arp->operation == kArpReply) {
    // Slirp asks for the guest's address if it ever forgets it.
    if (target == layout_.gateway && arp->sender_ip == layout_.guest) {
      auto frame = build_arp_frame(layout_.gateway_mac, *arp);
      engine_->input(frame);
    }
    return;
  }
  // Everything on the subnet but the guest itself (whose address probes must
  // stay unanswered) answers with the one router MAC.
  if (!layout_.in_subnet(target) || target == layout_.guest || target == layout_.network ||
      target == layout_.subnet_broadcast())
    return;
  ArpPacket reply{kArpReply, layout_.gateway_mac, target, arp->sender_mac, arp->sender_ip};
  send_to_guest(build_arp_frame(arp->sender_mac, reply));
}

void NetStack::on_ipv4(Bytes frame, Bytes payload) {
  auto ip = parse_ipv4(payload);
  if (!ip) {
    if (std::strcmp(ip.error(), "IPv4 fragment") == 0)
      ++stats_.dropped_fragments;
    else
      ++stats_.dropped_malformed;
    return;
  }
  if (ip->protocol == kIpProtoUdp) {
    auto udp = parse_udp(ip.value());
    if (!udp) {
      ++stats_.dropped_malformed;
      return;
    }
    if (udp->dst_port == kDhcpServerPort && udp->src_port == kDhcpClientPort) return on_dhcp(udp->payload);
    if (ip->src != layout_.guest) {
      ++stats_.dropped_spoofed;
      return;
    }
    if (udp->dst_port == kDnsPort && is_unicast(ip->dst)) return on_dns(ip.value(), udp->src_port, udp->payload);
    ++stats_.dropped_udp;
    return;
  }
  if (ip->src != layout_.guest) {
    ++stats_.dropped_spoofed;
    return;
  }
  if (ip->protocol == kIpProtoTcp) return on_tcp(frame, ip.value());
  if (ip->protocol == kIpProtoIcmp) return on_icmp(ip.value());
  ++stats_.dropped_other;
}

void NetStack::on_dhcp(Bytes payload) {
  auto msg = parse_dhcp_request(payload);
  if (!msg) {
    log().debug("net: bad DHCP message from the guest: {}", msg.error());
    ++stats_.dropped_malformed;
    return;
  }
  DhcpLease lease;
  lease.client_mac = layout_.guest_mac;
  lease.client = layout_.guest;
  lease.server = layout_.gateway;
  lease.netmask = layout_.netmask;
  lease.router = layout_.gateway;
  lease.dns = layout_.gateway;
  lease.mtu = layout_.mtu;
  auto reply = answer_dhcp(msg.value(), lease);
  if (!reply) return;
  ++stats_.dhcp_replies;
  log().debug("net: DHCP {} for the guest", reply->type == DhcpType::Offer ? "offer"
                                            : reply->type == DhcpType::Ack ? "ack"
                                                                           : "nak");
  FrameAddresses a{layout_.guest_mac, layout_.gateway_mac, layout_.gateway, kIpv4Broadcast};
  send_to_guest(build_udp_frame(a, kDhcpServerPort, kDhcpClientPort, reply->payload));
}

void NetStack::on_dns(const Ipv4Packet& ip, std::uint16_t src_port, Bytes payload) {
  ++stats_.dns_queries;
  const Ipv4 server = ip.dst;  // answer from whatever address the guest asked
  auto reply_to = [this, server, src_port, alive = std::weak_ptr<bool>(alive_)](std::vector<std::uint8_t> r) {
    if (!alive.expired()) send_dns_reply(server, src_port, std::move(r));
  };
  if (options_.dns == DnsMode::Open) {
    if (payload.size() <= 4096) dns_forwarder_->forward_raw(payload, reply_to);
    return;
  }
  auto query = parse_dns_query(payload);
  if (!query) {
    auto header = parse_dns_header(payload);
    if (header && !header->is_response()) reply_to(build_dns_error(header.value(), DnsRcode::FormErr));
    log().debug("net: malformed DNS query: {}", query.error());
    return;
  }
  if (synthetic_dns_) return reply_to(synthetic_dns_->answer(query.value()));
  // Trusted: only well-formed standard queries for Internet-class names leave.
  if (query->header.opcode() != 0) return reply_to(build_dns_error(query->header, DnsRcode::NotImp));
  if (query->question.klass != kDnsClassIn) return reply_to(build_dns_response(query.value(), DnsRcode::Refused, {}));
  dns_forwarder_->forward_checked(query.value(), reply_to);
}

void NetStack::send_dns_reply(const Ipv4& from, std::uint16_t to_port, std::vector<std::uint8_t> response) {
  // One frame, never fragmented: a bigger answer is not what the guest's
  // resolver asked for, so it is dropped (it will time out and retry).
  if (response.size() + kIpv4HeaderSize + kUdpHeaderSize > layout_.mtu) return;
  FrameAddresses a{layout_.guest_mac, layout_.gateway_mac, from, layout_.guest};
  send_to_guest(build_udp_frame(a, kDnsPort, to_port, response));
}

void NetStack::on_icmp(const Ipv4Packet& ip) {
  if (ip.dst != layout_.gateway) {
    ++stats_.dropped_other;
    return;
  }
  auto echo = parse_icmp_echo_request(ip);
  if (!echo) {
    ++stats_.dropped_other;
    return;
  }
  ++stats_.icmp_echo_replies;
  FrameAddresses a{layout_.guest_mac, layout_.gateway_mac, layout_.gateway, layout_.guest};
  send_to_guest(build_icmp_echo_reply_frame(a, echo.value()));
}

bool NetStack::tcp_destination_allowed(const Ipv4& dst) const {
  // Nothing listens on the virtual subnet (the gateway included) and the
  // guest's own loopback never leaves it.
  return is_unicast(dst) && !layout_.in_subnet(dst) && dst[0] != 127;
}

void NetStack::on_tcp(Bytes frame, const Ipv4Packet& ip) {
  auto seg = parse_tcp(ip, /*verify_checksum=*/true);
  if (!seg) {
    ++stats_.dropped_malformed;
    return;
  }
  const FlowKey key{seg->src_port, ip.dst, seg->dst_port};
  const auto now = TcpFlowTable::Clock::now();
  if (seg->has(kTcpSyn) && !seg->has(kTcpAck)) {
    // An opening SYN carries nothing else that ends or resets a connection.
    if (seg->has(kTcpFin) || seg->has(kTcpRst)) {
      ++stats_.dropped_malformed;
      return;
    }
    if (!tcp_destination_allowed(ip.dst)) return refuse_syn(ip, seg.value());
    switch (flows_->on_guest_syn(key, now)) {
      case TcpFlowTable::SynVerdict::Refuse:
        if (!flow_cap_reported_) {
          log().warn(
              "net: the guest has {} TCP handshakes in flight and {} flows open (limits {} and {}); "
              "refusing new connections until some end",
              flows_->handshakes(), flows_->size(), TcpFlowTable::Limits{}.max_handshakes,
              TcpFlowTable::Limits{}.max_flows);
          flow_cap_reported_ = true;
        }
        return refuse_syn(ip, seg.value());
      case TcpFlowTable::SynVerdict::New:
        // Hysteresis, so a guest hovering at the cap does not flood the log.
        if (flows_->handshakes() < TcpFlowTable::Limits{}.max_handshakes / 2 &&
            flows_->size() < TcpFlowTable::Limits{}.max_flows / 2)
          flow_cap_reported_ = false;
        if (!engine_->expect(ip.dst, seg->dst_port)) {
          flows_->forget(key);
          return refuse_syn(ip, seg.value());
        }
        break;
      case TcpFlowTable::SynVerdict::Retransmit: break;
    }
    engine_->input(frame);
    return;
  }
  flows_->on_guest_segment(key, seg.value(), now);
  engine_->input(frame);
  // Slirp connects to our listener inside slirp_input, while it handles the
  // ACK that completes a handshake: whatever is waiting now is this flow.
  if (seg->has(kTcpAck) && !seg->has(kTcpRst)) accept_flow(key);
}

void NetStack::accept_flow(const FlowKey& key) {
  auto fd = engine_->accept_new();
  if (!fd) return;
  const auto now = TcpFlowTable::Clock::now();
  if (!flows_->handshaking(key)) {
    log().warn("net: slirp opened a flow for {}:{} that no handshake expected; closed", to_string(key.dst),
               key.dst_port);
    return;
  }
  GuestFlowInfo info;
  info.flow_id = flows_->on_accepted(key, now);
  info.guest_ip = layout_.guest;
  info.guest_port = key.guest_port;
  info.dest_ip = key.dst;
  info.dest_port = key.dst_port;
  if (synthetic_dns_) info.hostname = synthetic_dns_->hostname_for(key.dst);
  asio::local::stream_protocol::socket socket(io_);
  boost::system::error_code ec;
  socket.assign(asio::local::stream_protocol(), fd->release(), ec);
  if (ec) return;
  ++stats_.tcp_flows;
  dispatcher_->dispatch(std::move(info), std::move(socket));
}

void NetStack::refuse_syn(const Ipv4Packet& ip, const TcpSegment& s) {
  ++stats_.tcp_refused;
  TcpEndpoints e{layout_.gateway_mac, layout_.guest_mac, ip.dst, layout_.guest, s.dst_port, s.src_port};
  send_to_guest(build_tcp_frame(e, 0, s.seq + 1, kTcpRst | kTcpAck));
}

// ---- host (slirp) -> guest -------------------------------------------------

void NetStack::on_slirp_frame(Bytes frame) {
  auto eth = parse_ethernet(frame);
  if (eth && eth->ether_type == kEtherTypeIpv4) {
    auto ip = parse_ipv4(eth->payload);
    if (ip && ip->protocol == kIpProtoTcp && ip->dst == layout_.guest) {
      auto seg = parse_tcp(ip.value(), /*verify_checksum=*/false);
      if (seg) {
        const FlowKey key{seg->dst_port, ip->src, seg->src_port};
        if (flows_->on_host_segment(key, seg.value(), TcpFlowTable::Clock::now()) ==
            TcpFlowTable::HostAction::ResetInstead) {
          // Egress closed the flow without a word: a refusal. The guest gets a
          // reset where slirp said FIN, and slirp gets one from "the guest"
          // (at the sequence number it expects next) so it forgets the flow.
          ++stats_.tcp_resets_for_refusal;
          TcpEndpoints to_guest{layout_.gateway_mac, layout_.guest_mac, ip->src,
                                layout_.guest,       seg->src_port,     seg->dst_port};
          send_to_guest(build_tcp_frame(to_guest, seg->seq, seg->ack, kTcpRst | kTcpAck));
          TcpEndpoints to_slirp{layout_.guest_mac, layout_.gateway_mac, layout_.guest,
                                ip->src,           seg->dst_port,       seg->src_port};
          slirp_injections_.push_back(build_tcp_frame(to_slirp, seg->ack, 0, kTcpRst));
          // Not from inside slirp's own callback.
          asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_)] {
            if (alive.expired()) return;
            auto frames = std::move(slirp_injections_);
            slirp_injections_.clear();
            for (const auto& f : frames) engine_->input(f);
          });
          return;
        }
      }
    }
  }
  send_to_guest(frame);
}

}  // namespace gondolin::net
