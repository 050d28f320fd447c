// The DHCP server the guest's ordinary client (busybox udhcpc) talks to at
// boot. There is exactly one client and one address to hand out, so the
// "server" is a pure function from a request to its reply.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "net/bytes.h"
#include "net/ip_address.h"

namespace gondolin::net {

constexpr std::uint16_t kDhcpServerPort = 67;
constexpr std::uint16_t kDhcpClientPort = 68;

enum class DhcpType : std::uint8_t {
  Discover = 1,
  Offer = 2,
  Request = 3,
  Decline = 4,
  Ack = 5,
  Nak = 6,
  Release = 7,
  Inform = 8,
};

struct DhcpMessage {
  std::uint32_t xid = 0;
  std::uint16_t flags = 0;
  Ipv4 ciaddr{};
  Mac chaddr{};
  DhcpType type = DhcpType::Discover;
  std::optional<Ipv4> requested_ip;  // option 50
  std::optional<Ipv4> server_id;     // option 54
};

// A client's BOOTREQUEST with its options. Strict about the fixed header and
// the magic cookie; options are walked with every length checked.
Parsed<DhcpMessage> parse_dhcp_request(Bytes udp_payload);

struct DhcpLease {
  Mac client_mac{};
  Ipv4 client{};
  Ipv4 server{};
  Ipv4 netmask{};
  Ipv4 router{};
  Ipv4 dns{};
  std::uint16_t mtu = 1500;
  std::uint32_t lease_seconds = 86400;
};

struct DhcpReply {
  DhcpType type = DhcpType::Offer;
  std::vector<std::uint8_t> payload;  // the UDP payload (BOOTREPLY)
};

// The reply to `m`, or nothing (not our client, not for us, or nothing to say).
std::optional<DhcpReply> answer_dhcp(const DhcpMessage& m, const DhcpLease& lease);

}  // namespace gondolin::net
