#include "config/dns_rules.h"

#include <boost/asio/ip/address.hpp>

#include "gondolin/error.h"

namespace gondolin::config {

namespace {
constexpr unsigned short kDnsPort = 53;
}  // namespace

std::vector<boost::asio::ip::udp::endpoint> parse_dns_servers(const std::vector<std::string>& addresses) {
  std::vector<boost::asio::ip::udp::endpoint> out;
  for (const auto& a : addresses) {
    boost::system::error_code ec;
    auto addr = boost::asio::ip::make_address(a, ec);
    if (ec || addr.is_unspecified() || addr.is_multicast())
      throw Error(ErrorKind::Usage, "invalid --dns-trusted-server '" + a + "': expected an IPv4 or IPv6 address");
    out.emplace_back(addr, kDnsPort);
  }
  return out;
}

}  // namespace gondolin::config
