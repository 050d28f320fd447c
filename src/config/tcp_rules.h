// Parsing and validation of the raw-TCP exceptions (mapped TCP and ingress),
// shared by the CLI, the policy file and the library. Every failure is a
// gondolin::Error (Usage) with one line naming the flag and what is wrong.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gondolin/net_policy.h"

namespace gondolin::config {

// GUEST_HOST[:PORT]=UPSTREAM_HOST:PORT, as --tcp-map takes it. `flag` names
// the source in errors ("--tcp-map", "policy file x: tcp_map").
TcpMap parse_tcp_map(std::string_view flag, std::string_view text);

// [HOST:]PORT[:GUEST_PORT], as --listen takes it. HOST is an IP address (or
// "localhost"); without it the listener binds 127.0.0.1 only. GUEST_PORT
// defaults to PORT.
Ingress parse_ingress(std::string_view flag, std::string_view text);

// The idle timeout of mapped TCP and ingress, in seconds as
// --tcp-idle-timeout and the policy file's "tcp_idle_timeout" take it: 0
// (never) up to kMaxTcpIdleTimeout, fractions allowed (rounded up to a ms).
inline constexpr std::chrono::seconds kMaxTcpIdleTimeout{7 * 24 * 3600};
std::chrono::milliseconds parse_tcp_idle_timeout(std::string_view flag, std::string_view text);
std::chrono::milliseconds tcp_idle_timeout_from_seconds(std::string_view flag, std::string_view text, double seconds);
// The API path: NetworkOptions::tcp_idle_timeout within 0..kMaxTcpIdleTimeout.
void validate_tcp_idle_timeout(std::chrono::milliseconds timeout);

// Checks whole lists (also those built through the C++ API): valid names and
// ports, no rule given twice, no host port listened on twice.
void validate_tcp_maps(const std::vector<TcpMap>& maps);
void validate_ingress(const std::vector<Ingress>& ingress);

// The rule for a flow to `host`:`port` (host as the guest dialled it): the
// one for exactly that port, else the port-less one; nullptr if none.
const TcpMap* find_tcp_map(const std::vector<TcpMap>& maps, std::string_view host, std::uint16_t port);

// Mapped TCP finds flows by the name the guest dialled, so it needs synthetic
// DNS with a name per address. Turns per-host mapping on (returns true if it
// did); throws (Usage) if DNS is not synthetic.
bool require_per_host_dns_for_tcp_maps(NetworkOptions& options);

// "name[:port]=upstream:port", as in logs.
std::string describe(const TcpMap& map);
std::string describe(const Ingress& ingress);

}  // namespace gondolin::config
