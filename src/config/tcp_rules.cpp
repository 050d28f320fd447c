#include "config/tcp_rules.h"

#include <boost/asio/ip/address.hpp>

#include <charconv>
#include <cmath>
#include <optional>
#include <set>
#include <utility>

#include "config/host_name_rules.h"
#include "config/setting_error.h"
#include "gondolin/error.h"

namespace gondolin::config {
namespace {

// Empty if `host` is a DNS name the synthetic resolver answers, else why not.
std::string guest_name_problem(const std::string& host) {
  if (auto why = dns_name_problem(host); !why.empty()) return why;
  // Flows are matched by the name behind a synthetic address: an address
  // literal never gets one, and localhost stays inside the guest.
  if (ends_in_numeric_label(host)) return "give the name the guest dials, not an address";
  if (host == "localhost" || host.ends_with(".localhost")) return "localhost never leaves the guest";
  return {};
}

std::string upstream_host_problem(const std::string& host) {
  if (host.empty()) return "missing upstream host";
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (!ec) return {};
  for (char c : host)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
      return "upstream host must be a host name or an IP address";
  return {};
}

// HOST:PORT where HOST may be a bracketed IPv6 literal; HOST is returned without brackets.
bool split_host_port(std::string_view text, std::string& host, std::string_view& port) {
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
    return true;
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return false;
  host = std::string(text.substr(0, colon));
  port = text.substr(colon + 1);
  return host.find(':') == std::string::npos;
}

}  // namespace

TcpMap parse_tcp_map(std::string_view flag, std::string_view text) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos) throw invalid_setting(flag, text, "expected GUEST_HOST[:PORT]=UPSTREAM_HOST:PORT");
  const std::string_view guest = text.substr(0, eq);
  const std::string_view upstream = text.substr(eq + 1);
  TcpMap m;
  const auto colon = guest.find(':');
  m.guest_host = normalize_host_name(guest.substr(0, colon));
  if (auto why = guest_name_problem(m.guest_host); !why.empty()) throw invalid_setting(flag, text, why);
  if (colon != std::string_view::npos && !parse_port(guest.substr(colon + 1), m.guest_port))
    throw invalid_setting(flag, text, "the guest port must be 1..65535");
  std::string host;
  std::string_view port;
  if (!split_host_port(upstream, host, port)) throw invalid_setting(flag, text, "the upstream must be HOST:PORT");
  m.upstream_host = normalize_host_name(host);
  if (auto why = upstream_host_problem(m.upstream_host); !why.empty()) throw invalid_setting(flag, text, why);
  if (!parse_port(port, m.upstream_port)) throw invalid_setting(flag, text, "the upstream port must be 1..65535");
  return m;
}

Ingress parse_ingress(std::string_view flag, std::string_view text) {
  Ingress in;
  std::string_view rest = text;
  std::optional<std::string> host;
  // A bracketed IPv6 host, or a first field that is not a number, is HOST.
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
      throw invalid_setting(flag, text, "expected [HOST:]PORT[:GUEST_PORT]");
    host = std::string(rest.substr(1, close - 1));
    rest = rest.substr(close + 2);
  } else if (const auto colon = rest.find(':'); colon != std::string_view::npos) {
    const std::string_view first = rest.substr(0, colon);
    if (first.empty() || first.find_first_not_of("0123456789") != std::string_view::npos) {
      host = std::string(first);
      rest = rest.substr(colon + 1);
    }
  }
  if (host) {
    if (*host == "localhost") host = "127.0.0.1";
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(*host, ec);
    if (ec) throw invalid_setting(flag, text, "HOST must be an IP address to listen on (e.g. 127.0.0.1 or 0.0.0.0)");
    in.host_address = address.to_string();
  }
  const auto colon = rest.find(':');
  if (!parse_port(rest.substr(0, colon), in.host_port))
    throw invalid_setting(flag, text, "the host port must be 1..65535");
  in.guest_port = in.host_port;
  if (colon != std::string_view::npos && !parse_port(rest.substr(colon + 1), in.guest_port))
    throw invalid_setting(flag, text, "the guest port must be 1..65535");
  return in;
}

std::chrono::milliseconds tcp_idle_timeout_from_seconds(std::string_view flag, std::string_view text, double seconds) {
  const auto max = static_cast<double>(kMaxTcpIdleTimeout.count());
  if (!std::isfinite(seconds) || seconds < 0 || seconds > max)
    throw invalid_setting(
        flag, text,
        "the idle timeout must be 0 (never) to " + std::to_string(kMaxTcpIdleTimeout.count()) + " seconds (a week)");
  return std::chrono::milliseconds(static_cast<long long>(std::ceil(seconds * 1000)));
}

std::chrono::milliseconds parse_tcp_idle_timeout(std::string_view flag, std::string_view text) {
  double seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    throw invalid_setting(flag, text, "expected a number of seconds (0: never)");
  return tcp_idle_timeout_from_seconds(flag, text, seconds);
}

void validate_tcp_idle_timeout(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0 || timeout > kMaxTcpIdleTimeout)
    throw invalid_setting("tcp idle timeout", std::to_string(timeout.count()) + " ms",
                          "must be 0 (never) to " + std::to_string(kMaxTcpIdleTimeout.count()) + " seconds (a week)");
}

void validate_tcp_maps(const std::vector<TcpMap>& maps) {
  std::set<std::pair<std::string, std::uint16_t>> seen;
  for (const auto& m : maps) {
    const std::string text = describe(m);
    if (m.guest_host != normalize_host_name(m.guest_host))
      throw invalid_setting("tcp map", text, "the guest host must be lower case without a trailing dot");
    if (auto why = guest_name_problem(m.guest_host); !why.empty()) throw invalid_setting("tcp map", text, why);
    if (auto why = upstream_host_problem(m.upstream_host); !why.empty()) throw invalid_setting("tcp map", text, why);
    if (m.upstream_port == 0) throw invalid_setting("tcp map", text, "the upstream port must be 1..65535");
    if (!seen.emplace(m.guest_host, m.guest_port).second)
      throw invalid_setting(
          "tcp map", text,
          m.guest_host + (m.guest_port ? ":" + std::to_string(m.guest_port) : "") + " is mapped twice");
  }
}

void validate_ingress(const std::vector<Ingress>& ingress) {
  std::set<std::pair<std::string, std::uint16_t>> seen;
  for (const auto& in : ingress) {
    const std::string text = describe(in);
    boost::system::error_code ec;
    boost::asio::ip::make_address(in.host_address, ec);
    if (ec) throw invalid_setting("listen", text, "the host address must be an IP address");
    if (in.host_port == 0 || in.guest_port == 0) throw invalid_setting("listen", text, "ports must be 1..65535");
    if (!seen.emplace(in.host_address, in.host_port).second)
      throw invalid_setting("listen", text, "host port " + std::to_string(in.host_port) + " is listened on twice");
  }
}

const TcpMap* find_tcp_map(const std::vector<TcpMap>& maps, std::string_view host, std::uint16_t port) {
  const std::string name = normalize_host_name(host);
  const TcpMap* any_port = nullptr;
  for (const auto& m : maps) {
    if (m.guest_host != name) continue;
    if (m.guest_port == port) return &m;
    if (m.guest_port == 0) any_port = &m;
  }
  return any_port;
}

bool require_per_host_dns_for_tcp_maps(NetworkOptions& options) {
  if (options.tcp_maps.empty()) return false;
  if (options.dns != DnsMode::Synthetic)
    throw Error(ErrorKind::Usage,
                "--tcp-map needs synthetic DNS (the default): mapped flows are found by the name the guest dialled");
  if (options.host_mapping == SyntheticHostMapping::PerHost) return false;
  options.host_mapping = SyntheticHostMapping::PerHost;
  return true;
}

std::string describe(const TcpMap& m) {
  const bool v6 = m.upstream_host.find(':') != std::string::npos;
  return m.guest_host + (m.guest_port ? ":" + std::to_string(m.guest_port) : "") + "=" +
         (v6 ? "[" + m.upstream_host + "]" : m.upstream_host) + ":" + std::to_string(m.upstream_port);
}

std::string describe(const Ingress& in) {
  const bool v6 = in.host_address.find(':') != std::string::npos;
  return (v6 ? "[" + in.host_address + "]" : in.host_address) + ":" + std::to_string(in.host_port) + ":" +
         std::to_string(in.guest_port);
}

}  // namespace gondolin::config
