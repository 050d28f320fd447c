// Which QEMU this host runs, asked of the binary itself (`--version`, cached
// per binary), and what gondolin can do with it. A running VM also knows its
// QEMU from QMP (VmInfo::qemu_version); these answer before QEMU starts.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace gondolin {

struct VmOptions;

// The QEMU binary a VM with these options runs: VmOptions::qemu_binary, else
// $GONDOLIN_QEMU, else qemu-system-x86_64, looked up in PATH. Throws
// gondolin::Error (Qemu) naming the fix if there is none.
std::filesystem::path resolve_qemu_binary(const VmOptions& o);

// QEMU's own version line ("QEMU emulator version 10.0.2 (Debian ...)"),
// for snapshot compatibility. Throws gondolin::Error (Qemu) if QEMU does not answer.
std::string qemu_version_line(const std::filesystem::path& qemu_binary);

struct QemuVersion {
  unsigned major = 0, minor = 0, micro = 0;
  std::string text() const;  // "10.0.2"
};
// The version in such a line, or nullopt if there is none.
std::optional<QemuVersion> parse_qemu_version(const std::string& line);

// QEMU 8.2 added vhost-user-fs migration with the back-end's internal state
// (VHOST_USER_PROTOCOL_F_DEVICE_STATE): virtio-fs mounts can be snapshotted.
bool qemu_migrates_virtiofs(const QemuVersion& v);
// The same asked of a binary. When it cannot, `which` (if given) is set to
// how to name that QEMU in a message ("QEMU 7.2.0", or its version line).
bool binary_migrates_virtiofs(const std::filesystem::path& qemu_binary, std::string* which = nullptr);

// One line on the QEMU that default options would run and what it allows,
// for `gondolin version` (where a machine with an old QEMU learns what it
// lacks); never throws.
std::string describe_default_qemu();

}  // namespace gondolin
