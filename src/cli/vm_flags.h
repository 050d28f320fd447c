// Flags shared by every subcommand that boots a VM (exec, bash, ...).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <utility>
#include <vector>

#include "gondolin/vm.h"

namespace gondolin::cli {

struct VmFlags {
  std::string image;
  std::string memory = "512M";
  unsigned cpus = 1;
  std::string accel = "auto";
  std::string machine = "microvm";
  std::vector<std::string> env;
  double boot_timeout_s = 120;
  std::vector<std::string> mount_hostfs;
  std::vector<std::string> mount_memfs;
  std::vector<std::string> hide;

  void add_to(CLI::App& cmd);
  // Validates and converts; throws gondolin::Error (Usage) naming the bad flag.
  VmOptions to_options() const;
};

std::pair<std::string, std::string> parse_env_assignment(const std::string& text);
std::uint32_t parse_memory_mib(const std::string& text);
Accel parse_accel(const std::string& text);

}  // namespace gondolin::cli
