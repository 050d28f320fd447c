// A guest's Ethernet frames through every parser of the network stack, in the
// order the stack uses them (Ethernet -> ARP | IPv4 -> UDP | ICMP | TCP ->
// DHCP | DNS), plus the answers built from what parsed: DHCP replies,
// synthetic DNS answers, and the forwarder's check of a resolver's reply.
// Pure code only; fuzz_net_stack drives the same frames through NetStack.
#include <cstddef>
#include <cstdint>
#include <span>

#include "net/arp.h"
#include "net/dhcp_server.h"
#include "net/dns_message.h"
#include "net/dns_synthetic.h"
#include "net/ethernet.h"
#include "net/flow_classifier.h"
#include "net/ipv4_packet.h"
#include "net/tcp_segment.h"

using namespace gondolin;
using namespace gondolin::net;

namespace {

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void dns(Bytes payload) {
  auto query = parse_dns_query(payload);
  if (!query) {
    if (auto head = parse_dns_header(payload)) (void)build_dns_error(*head, DnsRcode::FormErr);
    return;
  }
  // Both mappings; a per-host table small enough that eviction is exercised.
  static SyntheticDns single(SyntheticHostMapping::Single, NetLayout{});
  static SyntheticDns per_host(SyntheticHostMapping::PerHost, NetLayout{}, 16);
  auto a = single.answer(*query);
  auto b = per_host.answer(*query);
  check(a.size() <= 512 && b.size() <= 512);
  // What the synthetic server answers must parse as a reply to that question.
  if (b.size() >= 4 && (b[3] & 0x0f) == 0) check(parse_dns_response_head(b).ok());
  if (auto addr = per_host.address_of(ascii_lower(query->question.name)))
    check(per_host.hostname_for(*addr).has_value());
  (void)build_dns_query(query->header.id, query->question, query->edns_udp_size);
}

void ipv4(Bytes data) {
  auto ip = parse_ipv4(data);
  if (!ip) return;
  check(ip->payload.size() <= data.size());
  switch (ip->protocol) {
    case kIpProtoUdp: {
      auto udp = parse_udp(*ip);
      if (!udp) return;
      if (udp->dst_port == kDhcpServerPort) {
        if (auto m = parse_dhcp_request(udp->payload)) {
          DhcpLease lease{NetLayout{}.guest_mac, NetLayout{}.guest,   NetLayout{}.gateway,
                          NetLayout{}.netmask,   NetLayout{}.gateway, NetLayout{}.gateway};
          (void)answer_dhcp(*m, lease);
        }
      } else {
        dns(udp->payload);
      }
      break;
    }
    case kIpProtoIcmp:
      if (auto echo = parse_icmp_echo_request(*ip)) {
        FrameAddresses a{NetLayout{}.guest_mac, NetLayout{}.gateway_mac, ip->dst, ip->src};
        (void)build_icmp_echo_reply_frame(a, *echo);
      }
      break;
    case kIpProtoTcp:
      if (auto s = parse_tcp(*ip, true)) check(s->payload_length <= ip->payload.size());
      (void)parse_tcp(*ip, false);
      break;
    default: break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Bytes in(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {  // a whole frame
      auto eth = parse_ethernet(in);
      if (!eth) return 0;
      if (eth->ether_type == kEtherTypeArp) {
        if (auto arp = parse_arp(eth->payload)) (void)build_arp_frame(arp->sender_mac, *arp);
      } else if (eth->ether_type == kEtherTypeIpv4) {
        ipv4(eth->payload);
      }
      break;
    }
    case 1: ipv4(in); break;  // skips the Ethernet header the fuzzer would have to learn
    case 2:                   // a DNS message on its own: query, or a resolver's reply
      dns(in);
      if (auto head = parse_dns_response_head(in)) (void)ascii_lower(head->question.name);
      break;
    case 3: {  // a flow's first bytes
      auto verdict = classify_prefix(in);
      (void)verdict;
      (void)final_kind(in.first(std::min(in.size(), kMaxClassifyPrefix)));
      break;
    }
  }
  return 0;
}
