// Kernel modules shipped in the initramfs, loaded by class so boot only pays
// for what it needs: "boot" always, "mmio"/"pci" for the bus the machine has,
// "net" and "fs" when the host asks for a network or a mount.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace gondolin::agent {

class KernelModules {
 public:
  // Reads "<class> <path>" lines (dependencies first). Paths are resolved
  // against a directory descriptor of the initramfs opened now, so modules
  // stay loadable after switch_root hides the initramfs.
  static KernelModules from_list(const std::string& list_path);

  KernelModules() = default;
  KernelModules(KernelModules&& o) noexcept;
  KernelModules& operator=(KernelModules&& o) noexcept;
  KernelModules(const KernelModules&) = delete;
  KernelModules& operator=(const KernelModules&) = delete;
  ~KernelModules();

  // Loads every not yet loaded module of `cls`; returns how many loaded.
  int load(const std::string& cls);

 private:
  int root_fd_ = -1;
  std::vector<std::pair<std::string, std::string>> modules_;  // (class, path relative to root)
  std::set<std::string> loaded_;
};

// The process-wide instance the agent uses.
KernelModules& kernel_modules();

}  // namespace gondolin::agent
