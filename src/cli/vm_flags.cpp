#include "cli/vm_flags.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "config/host_secret_rules.h"
#include "config/mount_rules.h"
#include "config/tcp_rules.h"
#include "config/test_knobs.h"
#include "gondolin/error.h"

namespace gondolin::cli {

void VmFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--image", image,
                 "Image: name:tag, id, or path (default $GONDOLIN_DEFAULT_IMAGE or debian-base:latest)");
  cmd.add_option("-e,--env", env, "Set an environment variable in the guest (KEY=VALUE, repeatable)")
      ->allow_extra_args(false);
  cmd.add_option("--memory", memory, "Guest memory, e.g. 512M or 2G")->capture_default_str();
  cmd.add_option("--cpus", cpus, "Guest CPUs")->capture_default_str();
  cmd.add_option("--accel", accel, "Accelerator: auto, kvm or tcg")->capture_default_str();
  cmd.add_option("--machine", machine, "QEMU machine: microvm or q35")->capture_default_str();
  cmd.add_option("--boot-timeout", boot_timeout_s, "Seconds to wait for the guest to boot")->capture_default_str();
  cmd.add_flag("--cold", cold,
               "Boot the kernel instead of resuming the image's boot template (slower; clones of a template share "
               "its kernel's address layout; $GONDOLIN_COLD=1 does the same)");
  cmd.add_option("--rootfs-mode", rootfs_mode,
                 "Where writes to the guest's root go: cow (a sparse disk of the VM's own, default), memory (tmpfs, "
                 "bounded by guest RAM) or readonly (EROFS; /tmp and /run stay writable)")
      ->capture_default_str();
  cmd.add_option("--rootfs-size", rootfs_size, "Size of the cow root disk: the most the guest can write (sparse)")
      ->capture_default_str();

  add_egress_to(cmd);
  add_mounts_to(cmd);
  net.add_to(cmd);
  ssh.add_to(cmd);
}

void VmFlags::add_egress_to(CLI::App& cmd) {
  const char* egress_group = "Network egress (HTTP/HTTPS only; everything else is refused)";
  cmd.add_option("--allow-host", allow_hosts,
                 "Allow HTTP/HTTPS requests to hosts matching PATTERN ('*' wildcards, case-insensitive; repeatable). "
                 "Without --allow-host every HTTP request is denied, unless --allow-all-hosts")
      ->type_name("PATTERN")
      ->allow_extra_args(false)
      ->group(egress_group);
  cmd.add_flag("--allow-all-hosts", allow_all_hosts, "Allow HTTP/HTTPS requests to any public host")
      ->group(egress_group);
  cmd.add_option("--deny-host", deny_hosts,
                 "Refuse HTTP/HTTPS requests to hosts matching PATTERN even where --allow-host, --allow-all-hosts "
                 "or a secret would allow them (repeatable)")
      ->type_name("PATTERN")
      ->allow_extra_args(false)
      ->group(egress_group);
  cmd.add_option("--allow-internal-host", allow_internal_hosts,
                 "Names matching PATTERN may resolve to internal addresses (loopback, 10.x, ...), e.g. a company "
                 "gateway; they still need --allow-host or a secret (repeatable)")
      ->type_name("PATTERN")
      ->allow_extra_args(false)
      ->group(egress_group);
  cmd.add_option(
         "--host-secret", host_secrets,
         "NAME@HOST[,HOST...][:SCOPE][=@FILE|=@-|=VALUE]: the guest gets $NAME as a placeholder; the host "
         "substitutes the real value (the host's $NAME by default; =@FILE reads a file, =@- one line of stdin; a "
         "literal =VALUE shows in `ps`) in request headers sent to those hosts only, which the placeholder makes "
         "reachable; SCOPE = [METHOD,...][/PREFIX,...] limits it further, e.g. :GET,POST/v1/ (repeatable)")
      ->type_name("SPEC")
      ->allow_extra_args(false)
      ->group(egress_group);
  cmd.add_option("--secret-placeholder", secret_placeholders,
                 "NAME=PREFIX[:LENGTH[:ALPHABET]]: the shape of secret NAME's placeholder, for clients that check a "
                 "key's format (e.g. OPENAI_API_KEY=sk-:48:alnum); ALPHABET is hex (default), HEX, alnum, alpha, "
                 "lower, upper, digits or the characters themselves (repeatable)")
      ->type_name("NAME=SHAPE")
      ->allow_extra_args(false)
      ->group(egress_group);
  cmd.add_flag("--secrets-in-query", secrets_in_query, "Also substitute secret placeholders in URL query strings")
      ->group(egress_group);
  cmd.add_flag("--disable-websockets", disable_websockets, "Refuse WebSocket upgrades")->group(egress_group);
  cmd.add_option("--egress-log", egress_log, "Append one JSON line per allow/deny decision to FILE")
      ->type_name("FILE")
      ->group(egress_group);
  cmd.add_option("--policy", policy_file, "Read network policy from a JSON file (same settings as these flags)")
      ->type_name("FILE")
      ->group(egress_group);
  // Test-only knobs (config/test_knobs.h): accepted, not listed in --help.
  cmd.add_option("--test-loopback-host", test_loopback_hosts,
                 "TESTING ONLY: NAME resolves to 127.0.0.1 on the host and may reach loopback (repeatable)")
      ->type_name("NAME")
      ->allow_extra_args(false)
      ->group("");
  cmd.add_option("--upstream-ca", upstream_ca, "TESTING ONLY: also trust this CA (PEM) for upstream HTTPS")
      ->type_name("FILE")
      ->group("");
  cmd.add_option("--tcp-map", tcp_maps,
                 "Forward the guest's TCP connections to NAME (any port, or just PORT) as raw bytes to "
                 "UPSTREAM_HOST:PORT, chosen here on the host; loopback allowed. The only way raw TCP leaves. "
                 "Turns on per-host synthetic DNS (repeatable; a rule with a port wins)")
      ->type_name("NAME[:PORT]=UPSTREAM_HOST:PORT")
      ->allow_extra_args(false)
      ->group(egress_group);
  cmd.add_option("--tcp-idle-timeout", tcp_idle_timeout,
                 "Close a --tcp-map or --listen connection after this many seconds with no bytes either way, "
                 "logged in the egress log (default 600; 0: never)")
      ->type_name("SECONDS")
      ->group(egress_group);
}

void VmFlags::add_mounts_to(CLI::App& cmd) {
  cmd.add_option("--mount-hostfs", mount_hostfs,
                 "Mount a host directory in the guest: HOST_DIR:GUEST_PATH[:OPTIONS], OPTIONS a comma list of ro, "
                 "transport=serial|virtiofs, cache=auto|direct (repeatable)")
      ->allow_extra_args(false);
  cmd.add_option("--mount-memfs", mount_memfs,
                 "Mount an empty in-memory file system: GUEST_PATH[:OPTIONS], OPTIONS as for --mount-hostfs without ro "
                 "(repeatable)")
      ->allow_extra_args(false);
  cmd.add_option("--hide", hide,
                 "Make paths matching an absolute guest glob invisible inside the mounts, e.g. /work/**/.env "
                 "(repeatable)")
      ->allow_extra_args(false);
  cmd.add_option("--mount-transport", mount_transport,
                 "How the guest reaches mounts without transport=: auto (default: virtiofs where this QEMU can "
                 "snapshot it, 8.2 and later; else serial), virtiofs (fast bulk I/O) or serial (any QEMU)")
      ->check(CLI::IsMember({"auto", "serial", "virtiofs"}));
  cmd.add_option("--mount-cache", mount_cache,
                 "Guest page cache for mounts without cache=: auto (default) or direct (FOPEN_DIRECT_IO: no caching, "
                 "zero-copy with virtiofs; mmap(MAP_SHARED) of such files fails)")
      ->check(CLI::IsMember({"auto", "direct"}));
}

void VmFlags::add_listen_to(CLI::App& cmd) {
  cmd.add_option(
         "--listen", listen,
         "Listen on a host TCP port and forward each connection to GUEST_PORT (default: PORT) inside the "
         "guest. Binds 127.0.0.1 unless HOST (an IP address) is given (repeatable; also \"listen\" in --policy)")
      ->type_name("[HOST:]PORT[:GUEST_PORT]")
      ->allow_extra_args(false)
      ->group("Ingress");
}

std::pair<std::string, std::string> parse_env_assignment(const std::string& text) {
  auto eq = text.find('=');
  auto bad = [&] {
    return Error(ErrorKind::Usage,
                 "invalid -e '" + text + "': expected KEY=VALUE with KEY made of letters, digits and _");
  };
  if (eq == std::string::npos) throw bad();
  std::string key = text.substr(0, eq);
  if (!config::valid_env_name(key)) throw bad();
  std::string value = text.substr(eq + 1);
  return {key, value};
}

std::uint64_t parse_size_bytes(const std::string& flag, const std::string& text) {
  auto bad = [&] { return Error(ErrorKind::Usage, "invalid " + flag + " '" + text + "': use a size like 512M or 2G"); };
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0])) || text.size() > 24) throw bad();
  char* end = nullptr;
  unsigned long long n = std::strtoull(text.c_str(), &end, 10);
  std::string unit(end);
  int shift;
  if (unit.empty() || unit == "M" || unit == "m" || unit == "MiB" || unit == "MB")
    shift = 20;
  else if (unit == "G" || unit == "g" || unit == "GiB" || unit == "GB")
    shift = 30;
  else if (unit == "T" || unit == "t" || unit == "TiB" || unit == "TB")
    shift = 40;
  else
    throw bad();
  if (n > (~0ull >> shift)) throw bad();
  return static_cast<std::uint64_t>(n) << shift;
}

std::uint32_t parse_memory_mib(const std::string& text) {
  std::uint64_t mib = parse_size_bytes("--memory", text) >> 20;
  if (mib < 128 || mib > 1024ull * 1024) throw Error(ErrorKind::Usage, "--memory must be between 128M and 1024G");
  return static_cast<std::uint32_t>(mib);
}

RootfsMode parse_rootfs_mode(const std::string& text) {
  if (auto mode = rootfs_mode_from_string(text)) return *mode;
  throw Error(ErrorKind::Usage, "invalid --rootfs-mode '" + text + "': use cow, memory or readonly");
}

GuestUser parse_guest_user(const std::string& text) {
  if (text == "root") return GuestUser{};
  auto number = [&](const std::string& part) -> std::uint32_t {
    bool ok = !part.empty() && part.size() <= 10;
    for (char c : part) ok = ok && std::isdigit(static_cast<unsigned char>(c));
    if (!ok || std::stoull(part) > 0xfffffffe)
      throw Error(ErrorKind::Usage, "invalid --user '" + text + "': use UID[:GID] (numbers) or root");
    return static_cast<std::uint32_t>(std::stoull(part));
  };
  std::size_t colon = text.find(':');
  std::uint32_t uid = number(text.substr(0, colon));
  return GuestUser{uid, colon == std::string::npos ? uid : number(text.substr(colon + 1))};
}

Accel parse_accel(const std::string& text) {
  if (text == "auto") return Accel::Auto;
  if (text == "kvm") return Accel::Kvm;
  if (text == "tcg") return Accel::Tcg;
  throw Error(ErrorKind::Usage, "invalid --accel '" + text + "': use auto, kvm or tcg");
}

VmOptions VmFlags::to_options() const {
  VmOptions o;
  o.image = image;
  o.memory_mib = parse_memory_mib(memory);
  if (cpus < 1 || cpus > 64) throw Error(ErrorKind::Usage, "--cpus must be between 1 and 64");
  o.cpus = cpus;
  o.accel = parse_accel(accel);
  if (machine != "microvm" && machine != "q35")
    throw Error(ErrorKind::Usage, "invalid --machine '" + machine + "': use microvm or q35");
  o.machine = machine;
  o.rootfs_mode = parse_rootfs_mode(rootfs_mode);
  o.rootfs_size_bytes = parse_size_bytes("--rootfs-size", rootfs_size);
  if (o.rootfs_size_bytes < (std::uint64_t{64} << 20) || o.rootfs_size_bytes > (std::uint64_t{16} << 40))
    throw Error(ErrorKind::Usage, "--rootfs-size must be between 64M and 16T");
  if (!(boot_timeout_s > 0 && boot_timeout_s < 3600)) throw Error(ErrorKind::Usage, "--boot-timeout must be 0..3600 s");
  o.boot_timeout = std::chrono::milliseconds(static_cast<long long>(boot_timeout_s * 1000));
  o.cold = cold;
  for (const auto& e : env) o.env.push_back(parse_env_assignment(e));
  NetworkOptions& n = o.network;
  if (!policy_file.empty()) load_network_policy_file(policy_file, n);
  for (const auto& h : allow_hosts) n.allow_hosts.push_back(h);
  n.allow_all_hosts = n.allow_all_hosts || allow_all_hosts;
  n.deny_hosts.insert(n.deny_hosts.end(), deny_hosts.begin(), deny_hosts.end());
  n.allow_internal_hosts.insert(n.allow_internal_hosts.end(), allow_internal_hosts.begin(), allow_internal_hosts.end());
  for (const auto& spec : host_secrets) n.secrets.push_back(config::parse_host_secret(spec));
  for (const auto& spec : secret_placeholders) {
    auto [name, shape] = config::parse_named_placeholder_shape(spec);
    auto it = std::find_if(n.secrets.begin(), n.secrets.end(), [&](const HostSecret& s) { return s.name == name; });
    if (it == n.secrets.end())
      throw Error(ErrorKind::Usage, "--secret-placeholder " + name + ": no secret named " + name +
                                        " (give --host-secret " + name + "@HOST or a policy file secret)");
    it->placeholder_shape = shape;
  }
  n.secrets_in_query = n.secrets_in_query || secrets_in_query;
  if (disable_websockets) n.websockets = false;
  if (!egress_log.empty()) n.egress_log_path = egress_log;
  if (!test_loopback_hosts.empty() || !upstream_ca.empty()) {
    auto& knobs = config::test_knobs(n);
    knobs.loopback_hosts.insert(knobs.loopback_hosts.end(), test_loopback_hosts.begin(), test_loopback_hosts.end());
    if (!upstream_ca.empty()) knobs.extra_upstream_ca_file = upstream_ca;
  }
  for (const auto& spec : tcp_maps) n.tcp_maps.push_back(config::parse_tcp_map("--tcp-map", spec));
  for (const auto& spec : listen) n.ingress.push_back(config::parse_ingress("--listen", spec));
  if (!tcp_idle_timeout.empty())
    n.tcp_idle_timeout = config::parse_tcp_idle_timeout("--tcp-idle-timeout", tcp_idle_timeout);
  net.apply(n);
  if (!n.tcp_maps.empty()) {
    if (!n.enabled)
      throw Error(ErrorKind::Usage, "--tcp-map (or the policy file's \"tcp_map\") has no effect with --no-network");
    if (!net.host_mapping.empty() && n.host_mapping != SyntheticHostMapping::PerHost)
      throw Error(ErrorKind::Usage, "--tcp-map needs --dns-synthetic-host-mapping per-host (it finds flows by name)");
    config::require_per_host_dns_for_tcp_maps(n);  // names a non-synthetic --dns
    config::validate_tcp_maps(n.tcp_maps);
    if (net.host_mapping.empty())
      std::fprintf(stderr, "gondolin: --tcp-map turns on --dns-synthetic-host-mapping per-host\n");
  }
  if (!n.ingress.empty()) {
    if (!n.enabled)
      throw Error(ErrorKind::Usage, "--listen (or the policy file's \"listen\") has no effect with --no-network");
    config::validate_ingress(n.ingress);
  }
  n.ssh = ssh.to_options(std::move(n.ssh));
  if (!n.ssh.allowed_hosts.empty()) {
    if (!n.enabled) throw Error(ErrorKind::Usage, "--ssh-allow-host needs the network (drop --no-network)");
    if (n.dns != DnsMode::Synthetic)
      throw Error(ErrorKind::Usage, "--ssh-allow-host needs --dns synthetic (SSH flows are attributed to names by it)");
    if (net.host_mapping == "single")
      throw Error(ErrorKind::Usage, "--ssh-allow-host needs --dns-synthetic-host-mapping per-host");
  }
  if (mount_transport != "auto" && mount_transport != "serial" && mount_transport != "virtiofs")
    throw Error(ErrorKind::Usage, "--mount-transport must be auto, serial or virtiofs, not '" + mount_transport + "'");
  if (mount_cache != "auto" && mount_cache != "direct")
    throw Error(ErrorKind::Usage, "--mount-cache must be auto or direct, not '" + mount_cache + "'");
  vfs::MountOptions mount_defaults;
  if (mount_transport == "virtiofs") mount_defaults.transport = vfs::FsTransport::Virtiofs;
  if (mount_transport == "serial") mount_defaults.transport = vfs::FsTransport::Serial;
  mount_defaults.direct_io = mount_cache == "direct";
  o.mounts = config::build_mounts(mount_hostfs, mount_memfs, hide, mount_defaults);
  return o;
}

}  // namespace gondolin::cli
