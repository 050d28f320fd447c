#include "cli/net_flags.h"

#include "config/dns_rules.h"
#include "gondolin/error.h"

namespace gondolin::cli {

void NetFlags::add_to(CLI::App& cmd) {
  cmd.add_flag("--no-network", no_network, "Give the guest no network device at all");
  cmd.add_option("--dns", dns,
                 "How the guest's DNS is answered: synthetic (default; answered on the host, never forwarded), "
                 "trusted (well-formed queries forwarded to the host's resolvers) or open (forwarded as sent)");
  cmd.add_option("--dns-synthetic-host-mapping", host_mapping,
                 "Synthetic DNS: 'single' (every name answers one address, default) or 'per-host' (each name its "
                 "own address, so connections are attributed to the name)");
  cmd.add_option("--dns-trusted-server", trusted_servers,
                 "Resolver for --dns trusted or open (IP, repeatable; default: the host's /etc/resolv.conf)")
      ->allow_extra_args(false);
}

void NetFlags::apply(NetworkOptions& o) const {
  if (no_network) {
    if (!dns.empty() || !host_mapping.empty() || !trusted_servers.empty())
      throw Error(ErrorKind::Usage, "--dns options have no effect with --no-network");
    o.enabled = false;
    return;
  }
  if (dns.empty() || dns == "synthetic")
    o.dns = DnsMode::Synthetic;
  else if (dns == "trusted")
    o.dns = DnsMode::Trusted;
  else if (dns == "open")
    o.dns = DnsMode::Open;
  else
    throw Error(ErrorKind::Usage, "invalid --dns '" + dns + "': use synthetic, trusted or open");

  if (!host_mapping.empty()) {
    if (o.dns != DnsMode::Synthetic)
      throw Error(ErrorKind::Usage, "--dns-synthetic-host-mapping applies to --dns synthetic only");
    if (host_mapping == "single")
      o.host_mapping = SyntheticHostMapping::Single;
    else if (host_mapping == "per-host")
      o.host_mapping = SyntheticHostMapping::PerHost;
    else
      throw Error(ErrorKind::Usage,
                  "invalid --dns-synthetic-host-mapping '" + host_mapping + "': use single or per-host");
  }
  if (!trusted_servers.empty()) {
    if (o.dns == DnsMode::Synthetic)
      throw Error(ErrorKind::Usage, "--dns-trusted-server needs --dns trusted (or open); synthetic DNS never forwards");
    config::parse_dns_servers(trusted_servers);  // names the bad one
    o.trusted_dns_servers = trusted_servers;
  }
}

}  // namespace gondolin::cli
