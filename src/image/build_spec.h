// The JSON recipe an image is built from (images/*.json).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gondolin {

// Image, package and module names: nothing a shell or apt option could misread.
bool is_safe_spec_name(const std::string& s);
// "name[:tag]" as --tag and `image tag` take it; throws gondolin::Error
// (Usage) naming `what` ("--tag") when either part is not a safe name.
std::pair<std::string, std::string> parse_name_tag(const std::string& text, const std::string& what);

struct BuildSpec {
  std::string name = "debian-base";
  std::string tag = "latest";
  std::string suite = "bookworm";
  std::string variant = "minbase";
  std::string kernel_package = "linux-image-cloud-amd64";
  std::vector<std::string> packages;
  // Loaded at boot, dependencies added. Without the key: what every gondolin
  // VM needs (buses, console, disks, network, overlay, FUSE, virtio-fs).
  std::vector<std::string> modules = {"virtio_mmio", "virtio_pci", "virtio_console", "virtio_blk", "virtio_net",
                                      "ext4",        "overlay",    "fuse",           "virtiofs"};
  std::vector<std::string> apt_sources;  // files; empty: the host's own sources
  std::string cmdline;                   // appended to the kernel command line
  // Every command in the guest starts with these (flags and API override them).
  std::vector<std::pair<std::string, std::string>> env;
  // post_build.copy: host files or directories put into the root, in order,
  // before the commands run. `src` relative to the spec file's directory.
  struct Copy {
    std::filesystem::path src;
    std::string dest;  // absolute guest path without ".."
  };
  std::vector<Copy> copies;
  // post_build.commands: `sh -ec` in the new root (chroot), in order, with the
  // build host's package sources; the first failure fails the build.
  std::vector<std::string> commands;
  // A shell script the agent runs once at boot, before the first command
  // (guest/init_extra.h); empty: none.
  std::string init_extra;
  // "oci": the root comes from a saved container image instead of Debian
  // packages (then suite, variant, packages, apt_sources and post_build are
  // refused). Paths relative to the spec file.
  struct Oci {
    std::filesystem::path layout;   // an OCI image layout directory, or
    std::filesystem::path archive;  // a `docker save` / `podman save` tarball
    std::string ref;                // which image in it (empty: the only one)
  };
  std::optional<Oci> oci;
  unsigned rootfs_free_mib = 256;  // free space in the image's root fs
  std::string source_text;         // the JSON as read, recorded in the manifest

  // Strict: unknown keys, wrong types and unsafe package names are errors.
  // Relative copy sources are resolved against `base_dir` (the spec's directory).
  static BuildSpec parse(const std::string& json_text, const std::string& origin,
                         const std::filesystem::path& base_dir = {});
};

}  // namespace gondolin
