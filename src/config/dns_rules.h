// The grammar of the DNS resolvers a user names (--dns-trusted-server, the
// API's NetworkOptions::trusted_dns_servers).
#pragma once

#include <boost/asio/ip/udp.hpp>

#include <string>
#include <vector>

namespace gondolin::config {

// IPv4 or IPv6 addresses, port 53. Throws gondolin::Error (Usage) naming the
// first bad entry (unparsable, unspecified or multicast).
std::vector<boost::asio::ip::udp::endpoint> parse_dns_servers(const std::vector<std::string>& addresses);

}  // namespace gondolin::config
