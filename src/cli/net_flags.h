// The guest network's flags, shared by every subcommand that boots a VM:
// --no-network and the DNS mode (docs/network.md).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "gondolin/net_policy.h"

namespace gondolin::cli {

struct NetFlags {
  bool no_network = false;
  std::string dns;           // synthetic | trusted | open (empty: synthetic)
  std::string host_mapping;  // single | per-host (empty: single)
  std::vector<std::string> trusted_servers;

  void add_to(CLI::App& cmd);
  // Validates and fills `o`; throws gondolin::Error (Usage) naming the bad flag.
  void apply(NetworkOptions& o) const;
};

}  // namespace gondolin::cli
