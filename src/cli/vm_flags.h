// Flags shared by every subcommand that boots a VM (exec, bash, ...).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <utility>
#include <vector>

#include "cli/net_flags.h"
#include "cli/ssh_flags.h"
#include "gondolin/vm.h"

namespace gondolin::cli {

struct VmFlags {
  std::string image;
  std::string memory = "512M";
  unsigned cpus = 1;
  std::string accel = "auto";
  std::string machine = "microvm";
  std::string rootfs_mode = "cow";
  std::string rootfs_size = "2G";
  std::vector<std::string> env;
  double boot_timeout_s = 120;
  bool cold = false;
  NetFlags net;
  SshFlags ssh;

  // network egress (docs/egress.md)
  std::vector<std::string> allow_hosts;
  bool allow_all_hosts = false;
  std::vector<std::string> deny_hosts;
  std::vector<std::string> allow_internal_hosts;
  std::vector<std::string> host_secrets;
  std::vector<std::string> secret_placeholders;
  bool secrets_in_query = false;
  bool disable_websockets = false;
  std::string egress_log;
  std::string policy_file;
  std::vector<std::string> test_loopback_hosts;
  std::string upstream_ca;
  std::vector<std::string> tcp_maps;  // GUEST_HOST[:PORT]=UPSTREAM_HOST:PORT
  std::vector<std::string> listen;    // [HOST:]PORT[:GUEST_PORT]; exec and bash only (add_listen_to)
  std::string tcp_idle_timeout;       // seconds; empty: the policy file's, else the default

  // file system mounts (docs/filesystems.md)
  std::vector<std::string> mount_hostfs;
  std::vector<std::string> mount_memfs;
  std::vector<std::string> hide;
  std::string mount_transport = "auto";  // auto | serial | virtiofs, for every mount above
  std::string mount_cache = "auto";      // auto | direct

  void add_to(CLI::App& cmd);
  // --listen, for the subcommands that run a command (exec, bash).
  void add_listen_to(CLI::App& cmd);
  // Validates and converts; throws gondolin::Error (Usage) naming the bad flag.
  VmOptions to_options() const;

 private:
  void add_egress_to(CLI::App& cmd);
  void add_mounts_to(CLI::App& cmd);
};

std::pair<std::string, std::string> parse_env_assignment(const std::string& text);
std::uint32_t parse_memory_mib(const std::string& text);
// "512M", "2G", "1T" (binary units; a bare number is MiB) for `flag`; throws naming it.
std::uint64_t parse_size_bytes(const std::string& flag, const std::string& text);
RootfsMode parse_rootfs_mode(const std::string& text);
// --user: "UID[:GID]" (numbers; GID defaults to UID) or "root".
GuestUser parse_guest_user(const std::string& text);
Accel parse_accel(const std::string& text);

}  // namespace gondolin::cli
