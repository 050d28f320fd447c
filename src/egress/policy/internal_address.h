// Addresses the host must never connect to on the guest's behalf: its own
// loopback, private and link-local networks, CGNAT, multicast, broadcast and
// reserved ranges, for IPv4 and IPv6 (including IPv4 embedded in IPv6).
#pragma once

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string>

namespace gondolin::egress {

// nullopt for a public unicast address; else the name of the range it is in
// ("loopback", "private", "link-local", ...).
std::optional<std::string> internal_address_kind(const boost::asio::ip::address& address);

}  // namespace gondolin::egress
