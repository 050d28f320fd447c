// The initramfs every image boots (see initramfs_builder.h).
#include "image/initramfs_builder.h"

#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "gondolin/error.h"
#include "image/cpio_writer.h"
#include "image/embedded_assets.h"
#include "util/files.h"
#include "util/subprocess.h"

namespace gondolin {
namespace fs = std::filesystem;
namespace {

// A module's compression suffix (Debian's 6.12 kernels ship .ko.xz), or "".
std::string module_compression(const std::string& path) {
  for (const char* ext : {".xz", ".zst", ".gz"})
    if (path.ends_with(std::string(".ko") + ext)) return ext;
  return "";
}

// "kernel/drivers/block/virtio_blk.ko.xz" -> "virtio_blk" ('-' and '_' are
// one character to the kernel: virtio-rng.ko is module virtio_rng).
std::string module_name(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  name = name.substr(0, name.size() - module_compression(path).size());
  if (name.ends_with(".ko")) name.resize(name.size() - 3);
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}

// When the agent loads a module: at boot, for one bus, or on demand.
std::string module_class(const std::string& name) {
  if (name == "virtio_pci") return "pci";
  if (name == "virtio_mmio") return "mmio";
  if (name == "virtio_net") return "net";
  if (name == "fuse" || name == "virtiofs" || name == "9p" || name == "9pnet" || name == "9pnet_virtio") return "fs";
  return "boot";
}

std::vector<std::pair<std::string, std::string>> module_load_order(const fs::path& modules_dir,
                                                                   const std::vector<std::string>& modules) {
  std::set<std::string> builtin;
  {
    std::ifstream in(modules_dir / "modules.builtin");
    for (std::string line; std::getline(in, line);) builtin.insert(module_name(line));
  }
  std::map<std::string, std::pair<std::string, std::vector<std::string>>> by_name;  // name -> (path, deps)
  {
    std::ifstream in(modules_dir / "modules.dep");
    if (!in) throw Error(ErrorKind::Image, "kernel package has no modules.dep (depmod failed?)");
    for (std::string line; std::getline(in, line);) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string path = line.substr(0, colon);
      std::vector<std::string> deps;
      std::istringstream rest(line.substr(colon + 1));
      for (std::string d; rest >> d;) deps.push_back(d);
      by_name[module_name(path)] = {path, deps};
    }
  }
  // A dependency belongs to the class of the first module that needs it, so
  // "boot" modules come first and on-demand classes never miss a dependency.
  std::vector<std::pair<std::string, std::string>> order;
  std::set<std::string> seen;
  std::string current_class;
  std::function<void(const std::string&)> add_path = [&](const std::string& path) {
    if (!seen.insert(path).second) return;
    auto it = by_name.find(module_name(path));
    if (it != by_name.end())
      for (auto dep = it->second.second.rbegin(); dep != it->second.second.rend(); ++dep) add_path(*dep);
    order.emplace_back(current_class, path);
  };
  std::vector<std::string> requested = modules;
  std::stable_sort(requested.begin(), requested.end(), [&](const std::string& a, const std::string& b) {
    return (module_class(module_name(a)) == "boot") > (module_class(module_name(b)) == "boot");
  });
  for (const auto& m : requested) {
    std::string name = module_name(m);
    if (builtin.count(name)) continue;
    auto it = by_name.find(name);
    if (it == by_name.end()) throw Error(ErrorKind::Image, "kernel module " + m + " is not in the kernel package");
    current_class = module_class(name);
    add_path(it->second.first);
  }
  return order;
}

std::string decompress_module(const fs::path& file, const std::string& ext) {
  const char* tool = ext == ".xz" ? "xz" : ext == ".zst" ? "zstd" : "gzip";
  CommandResult r = run_command({tool, "-dc", file.string()}, {}, 64u << 20);
  if (!r.ok() || r.output.size() < 4 ||
      r.output.compare(0, 4,
                       "\x7f"
                       "ELF") != 0)
    throw Error(ErrorKind::Image, "cannot decompress kernel module " + file.string() + " with " + tool);
  return r.output;
}

}  // namespace

std::string build_initramfs(const fs::path& kernel_tree, const std::string& release, const fs::path& busybox,
                            const std::vector<std::string>& modules, const CommandRunner& run) {
  fs::path modules_dir = kernel_tree / "lib/modules" / release;
  if (!fs::exists(modules_dir / "modules.dep"))
    run({"depmod", "-b", kernel_tree.string(), release}, "indexing kernel modules with depmod");
  auto order = module_load_order(modules_dir, modules);

  CpioWriter cpio;
  for (const char* d : {"dev", "proc", "sys", "lower", "rw", "newroot", "bin", "etc", "lib", "lib/modules"})
    cpio.add_directory(d);
  cpio.add_char_device("dev/console", 5, 1);
  cpio.add_file("init", assets::guest_agent(), 0755);
  cpio.add_file("bin/busybox", read_file(busybox), 0755);
  cpio.add_symlink("bin/sh", "busybox");
  std::string base = "lib/modules/" + release;
  std::set<std::string> dirs;
  std::string list;
  for (const auto& [cls, rel] : order) {
    fs::path parent = fs::path(base) / fs::path(rel).parent_path();
    std::vector<fs::path> chain;
    for (fs::path p = parent; !p.empty() && p != "lib/modules"; p = p.parent_path()) chain.push_back(p);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it)
      if (dirs.insert(it->string()).second) cpio.add_directory(it->string());
    // Compressed modules are stored plain: the agent's finit_module needs no
    // in-kernel decompression, and the initramfs is not compressed anyway.
    std::string ext = module_compression(rel);
    std::string stored = rel.substr(0, rel.size() - ext.size());
    cpio.add_file(base + "/" + stored,
                  ext.empty() ? read_file(modules_dir / rel) : decompress_module(modules_dir / rel, ext));
    list += cls + " /" + base + "/" + stored + "\n";
  }
  cpio.add_file(base + "/gondolin.modules", list);
  return cpio.finish();
}

}  // namespace gondolin
