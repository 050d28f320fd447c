#include "cli/vm_flags.h"

#include <cctype>
#include <cstdlib>

#include "cli/mount_flags.h"
#include "gondolin/error.h"

namespace gondolin::cli {

void VmFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--image", image, "Image: name:tag, id, or path (default $GONDOLIN_DEFAULT_IMAGE or debian-base:latest)");
  cmd.add_option("-e,--env", env, "Set an environment variable in the guest (KEY=VALUE, repeatable)")
      ->allow_extra_args(false);
  cmd.add_option("--memory", memory, "Guest memory, e.g. 512M or 2G")->capture_default_str();
  cmd.add_option("--cpus", cpus, "Guest CPUs")->capture_default_str();
  cmd.add_option("--accel", accel, "Accelerator: auto, kvm or tcg")->capture_default_str();
  cmd.add_option("--machine", machine, "QEMU machine: microvm or q35")->capture_default_str();
  cmd.add_option("--boot-timeout", boot_timeout_s, "Seconds to wait for the guest to boot")->capture_default_str();
  cmd.add_option("--mount-hostfs", mount_hostfs,
                 "Mount a host directory in the guest: HOST_DIR:GUEST_PATH[:ro] (repeatable)")
      ->allow_extra_args(false);
  cmd.add_option("--mount-memfs", mount_memfs, "Mount an empty in-memory file system at GUEST_PATH (repeatable)")
      ->allow_extra_args(false);
  cmd.add_option("--hide", hide,
                 "Make paths matching an absolute guest glob invisible inside the mounts, e.g. /work/**/.env "
                 "(repeatable)")
      ->allow_extra_args(false);
}

std::pair<std::string, std::string> parse_env_assignment(const std::string& text) {
  auto eq = text.find('=');
  auto bad = [&] { return Error(ErrorKind::Usage, "invalid -e '" + text + "': expected KEY=VALUE with KEY made of letters, digits and _"); };
  if (eq == std::string::npos || eq == 0) throw bad();
  std::string key = text.substr(0, eq);
  if (std::isdigit(static_cast<unsigned char>(key[0]))) throw bad();
  for (char c : key)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) throw bad();
  std::string value = text.substr(eq + 1);
  return {key, value};
}

std::uint32_t parse_memory_mib(const std::string& text) {
  auto bad = [&] { return Error(ErrorKind::Usage, "invalid --memory '" + text + "': use a size like 512M or 2G"); };
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) throw bad();
  char* end = nullptr;
  unsigned long long n = std::strtoull(text.c_str(), &end, 10);
  std::string unit(end);
  unsigned long long mib;
  if (unit.empty() || unit == "M" || unit == "m" || unit == "MiB" || unit == "MB") mib = n;
  else if (unit == "G" || unit == "g" || unit == "GiB" || unit == "GB") mib = n * 1024;
  else throw bad();
  if (mib < 128 || mib > 1024ull * 1024) throw Error(ErrorKind::Usage, "--memory must be between 128M and 1024G");
  return static_cast<std::uint32_t>(mib);
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
  if (!(boot_timeout_s > 0 && boot_timeout_s < 3600)) throw Error(ErrorKind::Usage, "--boot-timeout must be 0..3600 s");
  o.boot_timeout = std::chrono::milliseconds(static_cast<long long>(boot_timeout_s * 1000));
  for (const auto& e : env) o.env.push_back(parse_env_assignment(e));
  o.mounts = build_mounts(mount_hostfs, mount_memfs, hide);
  return o;
}

}  // namespace gondolin::cli
