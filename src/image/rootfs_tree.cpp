#include "image/rootfs_tree.h"

#include <sys/stat.h>

#include "gondolin/error.h"
#include "image/tar_writer.h"
#include "util/files.h"

namespace gondolin {
namespace fs = std::filesystem;
namespace {

// A path as a debugfs command takes it, or nothing when it cannot say it.
std::optional<std::string> debugfs_quoted(const std::string& path) {
  if (path.find_first_of("\"\\\n\r") != std::string::npos) return std::nullopt;
  return "\"" + path + "\"";
}

void apply_fixups(const fs::path& image, const LayerUnpacker& unpacker, const CommandRunner& run) {
  if (unpacker.ownership_fixups().empty() && unpacker.xattr_fixups().empty()) return;
  fs::path values = image.string() + ".xattrs";
  fs::create_directories(values);
  std::string script;
  auto say = [&](const std::string& path) {
    auto q = debugfs_quoted(path);
    if (!q)
      throw Error(ErrorKind::Image, "cannot set the owner of " + path + " without root: build this image as root");
    return *q;
  };
  for (const auto& f : unpacker.ownership_fixups()) {
    script += "sif " + say(f.path) + " uid " + std::to_string(f.uid) + "\n";
    script += "sif " + say(f.path) + " gid " + std::to_string(f.gid) + "\n";
  }
  int n = 0;
  for (const auto& x : unpacker.xattr_fixups()) {
    fs::path value = values / std::to_string(n++);
    write_file_atomic(value, x.value);
    script += "ea_set -f " + say(value.string()) + " " + say(x.path) + " " + say(x.name) + "\n";
  }
  fs::path script_file = image.string() + ".debugfs";
  write_file_atomic(script_file, script);
  run({"debugfs", "-w", "-f", script_file.string(), image.string()},
      "setting owners in the root filesystem with debugfs");
  std::error_code ec;
  fs::remove(script_file, ec);
  fs::remove_all(values, ec);
}

}  // namespace

std::string gondolin_root_layer(const std::string& init_extra) {
  TarWriter tar;
  for (const auto& [dir, perm] : std::vector<std::pair<std::string, mode_t>>{{"etc", 0755},
                                                                             {"proc", 0555},
                                                                             {"sys", 0555},
                                                                             {"dev", 0755},
                                                                             {"tmp", 01777},
                                                                             {"run", 0755},
                                                                             {"root", 0700},
                                                                             {"lower", 0755},
                                                                             {"rw", 0755},
                                                                             {"newroot", 0755}})
    tar.add(TarEntry::dir(dir, perm));
  tar.add(TarEntry::file("etc/hostname", "gondolin\n"));
  tar.add(TarEntry::file("etc/hosts",
                         "127.0.0.1\tlocalhost\n127.0.1.1\tgondolin\n::1\tlocalhost ip6-localhost ip6-loopback\n"));
  tar.add(TarEntry::file("etc/.wh.resolv.conf", ""));
  if (!init_extra.empty()) {
    tar.add(TarEntry::dir("etc/gondolin"));
    tar.add(TarEntry::file("etc/gondolin/init-extra", init_extra, 0750));
  }
  return tar.finish();
}

void write_ext4_image(const fs::path& tree, const fs::path& image, unsigned free_mib, const LayerUnpacker* fixups,
                      const CommandRunner& run) {
  // Size: contents + 20% slack for ext4 metadata + the free space asked for.
  std::uintmax_t bytes = 0, inodes = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(tree, fs::directory_options::none, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    ++inodes;
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) bytes += (it->file_size(ec) + 4095) / 4096 * 4096;
  }
  std::uintmax_t size_mib = bytes * 12 / 10 / (1 << 20) + free_mib + 16;
  fs::path tmp = image;
  tmp += ".tmp";
  fs::remove(tmp, ec);
  run({"mke2fs", "-q", "-t", "ext4", "-d", tree.string(), "-L", "gondolin-root", "-m", "0", "-N",
       std::to_string(inodes + inodes / 2 + 4096), "-O", "^has_journal", "-E", "root_owner=0:0", tmp.string(),
       std::to_string(size_mib) + "M"},
      "writing the root filesystem with mke2fs");
  try {
    if (fixups) apply_fixups(tmp, *fixups, run);
    fs::rename(tmp, image);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

}  // namespace gondolin
