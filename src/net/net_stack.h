// One VM's network: the guest's Ethernet link in, everything it may reach out.
//
// Frames from the guest are checked and routed here: ARP and DHCP are
// answered, ICMP echo to the gateway is answered, DNS is answered or
// forwarded by mode, TCP goes to libslirp and comes back as one socket per
// flow for the dispatcher and egress. Everything else (IPv6, fragments, other
// UDP, spoofed sources) is dropped and counted. Runs on the VM's io thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "gondolin/net_policy.h"
#include "net/egress_factory.h"
#include "net/ip_address.h"
#include "net/ipv4_packet.h"
#include "util/unique_fd.h"

namespace gondolin::net {

class QemuNetLink;
class SlirpTcpEngine;
class TcpFlowTable;
class FlowDispatcher;
class SyntheticDns;
class DnsForwarder;
struct TcpSegment;
struct FlowKey;

struct NetStackStats {
  std::uint64_t frames_from_guest = 0;
  std::uint64_t frames_to_guest = 0;
  std::uint64_t dropped_malformed = 0;
  std::uint64_t dropped_spoofed = 0;  // wrong source MAC or IP
  std::uint64_t dropped_ipv6 = 0;
  std::uint64_t dropped_fragments = 0;
  std::uint64_t dropped_udp = 0;    // UDP other than DHCP and DNS
  std::uint64_t dropped_other = 0;  // other ethertypes, protocols, ICMP
  std::uint64_t dhcp_replies = 0;
  std::uint64_t dns_queries = 0;
  std::uint64_t icmp_echo_replies = 0;
  std::uint64_t tcp_refused = 0;  // SYNs answered with a reset by the stack itself
  std::uint64_t tcp_flows = 0;    // flows handed to egress
  std::uint64_t tcp_resets_for_refusal = 0;
};

class NetStack {
 public:
  // Throws gondolin::Error (Usage) for unusable DNS settings.
  NetStack(boost::asio::io_context& io, const NetworkOptions& options, const EgressFactory& egress,
           const NetLayout& layout = {});
  ~NetStack();
  NetStack(const NetStack&) = delete;
  NetStack& operator=(const NetStack&) = delete;

  // QEMU's end of the link (`-netdev stream,addr.type=fd`); ours stays here.
  UniqueFd take_qemu_end();
  void start();

  // Ingress: a new connection to `guest_port` inside the guest (one of
  // NetworkOptions::ingress), or nullopt with the reason in `error`.
  std::optional<UniqueFd> connect_guest_port(std::uint16_t guest_port, std::string& error);

  const NetLayout& layout() const { return layout_; }
  const NetStackStats& stats() const { return stats_; }

 private:
  void on_guest_frame(Bytes frame);
  void on_arp(Bytes payload);
  void on_ipv4(Bytes frame, Bytes payload);
  void on_dhcp(Bytes payload);
  void on_dns(const Ipv4Packet& ip, std::uint16_t src_port, Bytes payload);
  void on_icmp(const Ipv4Packet& ip);
  void on_tcp(Bytes frame, const Ipv4Packet& ip);
  void refuse_syn(const Ipv4Packet& ip, const TcpSegment& s);
  void accept_flow(const FlowKey& key);
  bool tcp_destination_allowed(const Ipv4& dst) const;

  void on_slirp_frame(Bytes frame);
  void send_to_guest(Bytes frame);
  void send_dns_reply(const Ipv4& from, std::uint16_t to_port, std::vector<std::uint8_t> response);
  void schedule_gc();

  boost::asio::io_context& io_;
  NetworkOptions options_;
  NetLayout layout_;
  NetStackStats stats_;
  UniqueFd qemu_end_;
  std::shared_ptr<QemuNetLink> link_;  // shared: its pending handlers hold it
  std::unique_ptr<SlirpTcpEngine> engine_;
  std::unique_ptr<TcpFlowTable> flows_;
  std::unique_ptr<EgressHandlers> egress_;
  std::unique_ptr<FlowDispatcher> dispatcher_;
  std::unique_ptr<SyntheticDns> synthetic_dns_;
  std::unique_ptr<DnsForwarder> dns_forwarder_;
  boost::asio::steady_timer gc_timer_;
  std::vector<std::vector<std::uint8_t>> slirp_injections_;  // resets for slirp, fed after its callback returns
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool flow_cap_reported_ = false;  // one warning per episode of refusing SYNs at the cap
};

}  // namespace gondolin::net
