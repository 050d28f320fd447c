// What the guest may reach over the network, decided on the host.
//
// The guest gets a normal eth0, but every packet ends in gondolin's own
// user-space stack: DNS is answered by the host, TCP flows are terminated on
// the host and classified, and only HTTP/HTTPS to allowed hosts (plus the
// explicit exceptions of SSH egress and mapped TCP) ever leave, re-sent by the
// host itself.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gondolin/ssh_options.h"

namespace gondolin {

enum class DnsMode {
  Synthetic,  // answered by the host with synthetic addresses, never forwarded
  Trusted,    // well-formed queries forwarded to the host's (or given) resolvers
  Open,       // forwarded as sent
};

enum class SyntheticHostMapping {
  Single,   // every name answers the same synthetic address
  PerHost,  // each name gets its own address, so later flows map back to the name
};

// A secret the guest may use without seeing it: the guest's environment gets
// NAME=<placeholder>; the host substitutes the real value in request headers
// sent to `hosts` only (docs/egress.md#secrets). A request carrying the
// placeholder to one of `hosts` is allowed even if the host is not in
// allow_hosts (rule "secret-host NAME"); deny_hosts still wins.
struct HostSecret {
  std::string name;                // an environment variable name
  std::vector<std::string> hosts;  // patterns, '*' wildcards
  std::string value;               // never enters the guest; no CR, LF or NUL
  // Optional scope: the placeholder is substituted only in requests with one
  // of these methods (exact, e.g. "GET") and whose path starts with one of
  // these prefixes ("/v1/" matches "/v1/x"; "/v1" matches "/v1" and
  // "/v1/x", not "/v1x"). Empty: any. Outside the scope the request is
  // refused (403, rule "secret-scope").
  std::vector<std::string> methods;
  std::vector<std::string> path_prefixes;
  // Normally empty (a fresh random placeholder). A resumed session sets it to
  // the placeholder its guest already holds.
  std::string placeholder;
  // The placeholder's shape, for clients that check a key's format (keys
  // that must start with "sk-", say): `prefix`, then `length` characters
  // drawn from `alphabet`. The random part must carry at least 128 bits.
  struct Shape {
    std::string prefix = "GONDOLIN_SECRET_";    // letters, digits, '_', '-', '.'; at most 64
    std::size_t length = 32;                    // at most 256
    std::string alphabet = "0123456789abcdef";  // distinct letters and digits
  };
  Shape placeholder_shape;
};

// Mapped TCP (--tcp-map): the guest's TCP flows to `guest_host` are forwarded
// as raw bytes to `upstream_host`:`upstream_port`, chosen here on the host.
// The only way raw TCP leaves the guest, and the one way an internal or
// loopback upstream may be reached (the user named it). Needs synthetic DNS
// with per-host mapping, which a VM with mapped TCP turns on by itself.
struct TcpMap {
  std::string guest_host;        // the name the guest dials: lower case, no trailing dot
  std::uint16_t guest_port = 0;  // 0: any port (a rule with this port wins over it)
  std::string upstream_host;     // host name or IP literal, resolved on the host
  std::uint16_t upstream_port = 0;
};

// Ingress (--listen): the host listens on `host_address`:`host_port` and
// forwards each accepted connection to `guest_port` inside the guest.
struct Ingress {
  std::string host_address = "127.0.0.1";  // an IP literal; anything but loopback must be asked for
  std::uint16_t host_port = 0;
  std::uint16_t guest_port = 0;
};

namespace detail {
struct NetworkTestKnobs;  // src/config/test_knobs.h
}  // namespace detail

class HttpHooks;  // include/gondolin/http_hooks.h (request/response interception)

struct NetworkOptions {
  bool enabled = true;
  DnsMode dns = DnsMode::Synthetic;
  SyntheticHostMapping host_mapping = SyntheticHostMapping::Single;
  std::vector<std::string> trusted_dns_servers;  // Trusted mode; empty: the host's resolvers

  std::vector<std::string> allow_hosts;  // HTTP/HTTPS host patterns ('*' wildcards, case-insensitive)
  bool allow_all_hosts = false;          // without allow_hosts, everything is denied unless this is set
  std::vector<std::string> deny_hosts;   // refused even when allow_hosts, allow_all_hosts or a secret would allow
  // Names (patterns) that may resolve to internal addresses (loopback,
  // RFC 1918, ...): an LLM gateway on 10.x, say. They still need allowing;
  // every other name is refused when it resolves to one.
  std::vector<std::string> allow_internal_hosts;
  std::vector<HostSecret> secrets;
  bool secrets_in_query = false;  // also substitute placeholders in URL query strings
  bool websockets = true;
  std::string egress_log_path;   // one JSON line per decision; empty: none
  std::vector<TcpMap> tcp_maps;  // raw TCP exceptions, see TcpMap
  std::vector<Ingress> ingress;  // host ports forwarded into the guest, see Ingress
  std::shared_ptr<HttpHooks> http_hooks;
  // SSH egress (docs/ssh.md): off unless ssh.allowed_hosts is set. Needs
  // synthetic DNS; a VM turns on per-host mapping for it.
  SshOptions ssh;

  // Internal: settings only gondolin's own tests use (loopback stand-ins for
  // upstream hosts, a test CA). Null in normal use; not settable through
  // this header.
  std::shared_ptr<const detail::NetworkTestKnobs> test_knobs;

  // Limits of the HTTP/HTTPS proxy.
  std::chrono::milliseconds upstream_connect_timeout{10000};   // resolve + connect + TLS handshake
  std::chrono::milliseconds upstream_response_timeout{60000};  // silence from upstream mid-exchange
  std::chrono::milliseconds guest_idle_timeout{120000};        // idle keep-alive guest connection
  std::size_t max_upstream_connections = 128;                  // per VM, at once (mapped TCP included)
  std::size_t max_ingress_connections = 64;                    // per VM, at once
  // Mapped TCP and ingress connections with no byte either way for this long
  // are closed on both sides (zero: never). Long, because database clients
  // keep pooled connections idle for minutes and reconnect badly when they
  // are cut; the same as SshOptions::idle_timeout.
  std::chrono::milliseconds tcp_idle_timeout{600000};
  // How long a new flow may stay silent before it is classified "other" and
  // refused. Long because TLS clients under TCG take seconds to say hello.
  std::chrono::milliseconds classify_timeout{10000};
  // HTTP/HTTPS connections from the guest served at once, per VM. Each holds
  // about 130 KiB of host buffers (plus TLS state), so this bounds the host
  // memory a guest can pin by opening connections and stalling; beyond it a
  // new connection is closed at once (egress log rule "guest-connection-cap").
  std::size_t max_guest_connections = 256;

  // Where the per-user MITM CA lives (ca.key mode 0600, ca.crt). Empty:
  // $XDG_CONFIG_HOME/gondolin/mitm (default ~/.config/gondolin/mitm).
  std::string mitm_ca_dir;
};

// Reads a JSON policy file (the same settings as the CLI's network flags) and
// adds it to `into`: lists are appended, switches that are true are set.
// Unknown keys and wrong types are errors (gondolin::Error, kind Policy)
// naming the key. Secrets without "value" take it from the host environment.
// "tcp_map" is a list of --tcp-map rules ("NAME[:PORT]=UPSTREAM_HOST:PORT"),
// "listen" a list of --listen specs ("[HOST:]PORT[:GUEST_PORT]"), and
// "tcp_idle_timeout" the seconds before an idle one of either is closed.
void load_network_policy_file(const std::string& path, NetworkOptions& into);

}  // namespace gondolin
