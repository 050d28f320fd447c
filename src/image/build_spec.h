// The JSON recipe an image is built from (images/*.json).
#pragma once

#include <string>
#include <vector>

namespace gondolin {

struct BuildSpec {
  std::string name = "debian-base";
  std::string tag = "latest";
  std::string suite = "bookworm";
  std::string variant = "minbase";
  std::string kernel_package = "linux-image-cloud-amd64";
  std::vector<std::string> packages;
  std::vector<std::string> modules;        // loaded at boot, dependencies added
  std::vector<std::string> apt_sources;    // files; empty: the host's own sources
  std::string cmdline;                     // appended to the kernel command line
  unsigned rootfs_free_mib = 256;          // free space in the image's root fs
  std::string source_text;                 // the JSON as read, recorded in the manifest

  // Strict: unknown keys, wrong types and unsafe package names are errors.
  static BuildSpec parse(const std::string& json_text, const std::string& origin);
};

}  // namespace gondolin
