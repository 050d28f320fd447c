#include "vm/qemu_version.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>

#include "gondolin/error.h"
#include "gondolin/vm.h"
#include "util/paths.h"
#include "util/sha256.h"
#include "util/subprocess.h"

namespace gondolin {
namespace fs = std::filesystem;

std::string qemu_version_line(const fs::path& qemu_binary) {
  // Asking QEMU costs a process start on every resume; the answer only
  // changes with the binary, so it is remembered per (path, size, mtime).
  static std::mutex mutex;
  static std::map<std::string, std::string> cache;
  std::error_code ec;
  auto size = fs::file_size(qemu_binary, ec);
  auto mtime = fs::last_write_time(qemu_binary, ec).time_since_epoch().count();
  std::string key = qemu_binary.string() + "|" + std::to_string(size) + "|" + std::to_string(mtime);
  std::string cache_key_hex = sha256_hex(key).substr(0, 16);
  fs::path cache_file = paths::cache_dir() / "qemu-version" / cache_key_hex;
  std::lock_guard lock(mutex);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  {
    std::ifstream in(cache_file);
    std::string line;
    if (std::getline(in, line) && !line.empty()) return cache[key] = line;
  }
  CommandResult r = run_command({qemu_binary.string(), "--version"});
  std::string line = r.output.substr(0, r.output.find('\n'));
  if (!r.ok() || line.empty()) throw Error(ErrorKind::Qemu, "cannot ask " + qemu_binary.string() + " for its version");
  fs::create_directories(cache_file.parent_path(), ec);
  std::ofstream(cache_file, std::ios::trunc) << line << "\n";
  return cache[key] = line;
}

std::string QemuVersion::text() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(micro);
}

std::optional<QemuVersion> parse_qemu_version(const std::string& line) {
  const std::string marker = "version ";
  const auto at = line.find(marker);
  if (at == std::string::npos) return std::nullopt;
  QemuVersion v;
  int used = 0;
  if (std::sscanf(line.c_str() + at + marker.size(), "%u.%u.%u%n", &v.major, &v.minor, &v.micro, &used) != 3 ||
      used == 0)
    return std::nullopt;
  return v;
}

bool qemu_migrates_virtiofs(const QemuVersion& v) { return v.major > 8 || (v.major == 8 && v.minor >= 2); }

bool binary_migrates_virtiofs(const std::filesystem::path& qemu_binary, std::string* which) {
  const std::string line = qemu_version_line(qemu_binary);
  const auto version = parse_qemu_version(line);
  if (version && qemu_migrates_virtiofs(*version)) return true;
  if (which) *which = version ? "QEMU " + version->text() : "\"" + line + "\"";
  return false;
}

std::filesystem::path resolve_qemu_binary(const VmOptions& o) {
  std::string name = o.qemu_binary;
  if (name.empty())
    if (const char* env = std::getenv("GONDOLIN_QEMU"); env && *env) name = env;
  if (name.empty()) name = "qemu-system-x86_64";
  auto found = paths::find_program(name);
  if (found.empty())
    throw Error(ErrorKind::Qemu,
                "QEMU binary '" + name + "' not found (apt-get install qemu-system-x86, or set GONDOLIN_QEMU)");
  return found;
}

std::string describe_default_qemu() {
  try {
    const fs::path binary = resolve_qemu_binary(VmOptions{});
    const auto version = parse_qemu_version(qemu_version_line(binary));
    std::string out =
        "qemu: " + binary.string() + " (" + (version ? "QEMU " + version->text() : "version unknown") + ")";
    if (version && qemu_migrates_virtiofs(*version)) return out + ": mounts use virtio-fs, snapshots included";
    return out + ": mounts use virtio-serial; virtio-fs mounts cannot be snapshotted (QEMU 8.2 and later can)";
  } catch (const Error& e) {
    return std::string("qemu: ") + e.what();
  }
}

}  // namespace gondolin
