// The seam between the network stack (src/net) and egress (src/egress).
//
// The stack terminates every TCP connection the guest opens and hands it over
// as an ordinary stream socket in our process. The dispatcher reads the first
// bytes, classifies the flow and passes it to the matching egress handler,
// together with the bytes already read. Everything runs on the VM's io thread.
#pragma once

#include <boost/asio/local/stream_protocol.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "net/ip_address.h"

namespace gondolin::net {

struct GuestFlowInfo {
  std::uint64_t flow_id = 0;  // unique per VM, for logs
  Ipv4 guest_ip{};
  std::uint16_t guest_port = 0;
  Ipv4 dest_ip{};  // the (synthetic) address the guest dialled
  std::uint16_t dest_port = 0;
  std::optional<std::string> hostname;  // the name behind dest_ip (synthetic per-host DNS)
};

enum class FlowKind { Http, Tls, Ssh, Other };

struct GuestFlow {
  GuestFlowInfo info;
  FlowKind kind = FlowKind::Other;
  std::string prefix;                                  // bytes already read from the guest while classifying
  boost::asio::local::stream_protocol::socket socket;  // the guest side of the connection
};

// Implemented by src/egress. Handlers own the flow from here on: to refuse,
// they close it (the stack turns that into a reset for the guest).
class EgressHandlers {
 public:
  virtual ~EgressHandlers() = default;
  virtual void on_http(GuestFlow flow) = 0;
  virtual void on_tls(GuestFlow flow) = 0;
  virtual void on_ssh(GuestFlow flow) = 0;
  // Neither HTTP, TLS nor SSH (or nothing sent in time): refused and logged by egress.
  virtual void on_other(GuestFlow flow) = 0;

  // Mapped TCP: flows the host forwards as raw bytes skip classification,
  // because their clients may wait for the server to speak first. Asked as
  // soon as a flow opens; true hands it to on_mapped with no prefix read.
  virtual bool is_mapped(const GuestFlowInfo& /*info*/) const { return false; }
  virtual void on_mapped(GuestFlow flow) { on_other(std::move(flow)); }
};

}  // namespace gondolin::net
