#include "vm/qemu_command.h"

#include <algorithm>

#include "gondolin/error.h"
#include "proto/control_protocol.h"
#include "vm/accel.h"

namespace gondolin::vm {
namespace {

// A path goes into a comma-separated QEMU option list, where ',' must be doubled.
std::string qemu_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    out.push_back(c);
    if (c == ',') out.push_back(',');
  }
  return out;
}

}  // namespace

std::filesystem::path microvm_firmware(const std::filesystem::path& qemu_binary) {
  std::error_code ec;
  for (const auto& dir :
       {qemu_binary.parent_path().parent_path() / "share/qemu", std::filesystem::path("/usr/share/qemu")}) {
    std::filesystem::path rom = dir / "qboot.rom";
    if (std::filesystem::is_regular_file(rom, ec)) return rom;
  }
  return {};
}

std::string virtio_device(const std::string& machine, const std::string& base) {
  // microvm has no PCI: its devices sit on virtio-mmio.
  return base + (machine == "microvm" ? "-device" : "-pci");
}

std::vector<std::string> network_device_args(const std::string& machine, const std::string& mac) {
  return {"-netdev", "stream,id=net0,server=off,addr.type=fd,addr.str={fd}", "-device",
          virtio_device(machine, "virtio-net") + ",netdev=net0,mac=" + mac};
}

std::vector<std::string> mount_device_args(const std::string& machine, const std::string& port_name, bool virtiofs) {
  const std::string id = "c" + port_name.substr(port_name.rfind('.') + 1);
  std::string device =
      virtiofs
          // 1024 descriptors: the guest driver caps a request at ring size - 4 pages.
          ? virtio_device(machine, "vhost-user-fs") + ",chardev=" + id + ",tag=" + port_name + ",queue-size=1024"
          : "virtserialport,chardev=" + id + ",name=" + port_name;
  return {"-chardev", "socket,id=" + id + ",fd={fd}", "-device", device};
}

QemuLaunch launch_for(const Image& image, const VmOptions& o, Accel accel) {
  QemuLaunch l;
  l.accel = accel;
  l.machine = o.machine;
  l.memory_mib = o.memory_mib;
  l.cpus = o.cpus;
  l.kernel = image.kernel_path();
  l.initrd = image.initramfs_path();
  l.rootfs = image.rootfs_path();
  l.rootfs_mode = to_string(o.rootfs_mode);
  l.cmdline = image.manifest.cmdline;
  l.tsc_khz = host_tsc_khz();
  return l;
}

namespace {

void check_launch(const QemuLaunch& l) {
  if (l.accel == Accel::Auto) throw Error(ErrorKind::Internal, "accelerator must be resolved before launch");
  if (l.machine != "microvm" && l.machine != "q35")
    throw Error(ErrorKind::Usage, "unknown machine type '" + l.machine + "' (use microvm or q35)");
  if (l.memory_mib < 128 || l.memory_mib > 1024 * 1024)
    throw Error(ErrorKind::Usage,
                "memory must be between 128 MiB and 1 TiB, got " + std::to_string(l.memory_mib) + " MiB");
  if (l.cpus < 1 || l.cpus > 255) throw Error(ErrorKind::Usage, "cpus must be between 1 and 255");
  if (l.control_fd < 0 || l.console_fd < 0) throw Error(ErrorKind::Internal, "QEMU launch without channels");
}

// Machine, firmware, accelerator, CPU, QEMU's own seccomp filter, size.
void add_machine(const QemuLaunch& l, std::vector<std::string>& a) {
  const bool kvm = l.accel == Accel::Kvm;
  if (l.machine == "microvm") {
    a.insert(a.end(), {"-machine", "microvm,x-option-roms=off,isa-serial=on,rtc=on,pic=off,pit=off"});
    // qboot: the firmware made for microvm. (Backports' SeaBIOS 1.16.3
    // bios-microvm.bin, QEMU's default, never hands over to the kernel under
    // QEMU 10 with TCG.)
    if (std::filesystem::path rom = microvm_firmware(l.qemu_binary); !rom.empty())
      a.insert(a.end(), {"-bios", rom.string()});
  } else {
    a.insert(a.end(), {"-machine", "q35"});
  }
  a.insert(a.end(), {"-accel", kvm ? "kvm" : "tcg", "-cpu", kvm ? "host" : "max"});
  // QEMU's own seccomp filter: a guest that escapes into QEMU still cannot
  // gain privileges or use obsolete syscalls. Spawning stays allowed: snapshots
  // migrate through `exec:zstd`.
  a.insert(a.end(), {"-sandbox", "on,obsolete=deny,elevateprivileges=deny,resourcecontrol=deny"});
  a.insert(a.end(), {"-m", std::to_string(l.memory_mib), "-smp", std::to_string(l.cpus)});
}

// Guest RAM: always a backend named "ram" (the migration stream names RAM
// blocks, so a snapshot of any of these layouts loads into any other).
void add_memory(const QemuLaunch& l, QemuCommand& cmd, std::vector<std::string>& a, int& next_fd) {
  const std::string size = "size=" + std::to_string(l.memory_mib) + "M";
  const bool file_ram = !l.memory_file.empty() || l.memory_fd >= 0;
  if (l.vhost_user && !(file_ram && (l.memory_file_shared || l.memory_fd >= 0)))
    throw Error(ErrorKind::Internal, "a vhost-user device needs guest RAM shared with its back-end");
  if (!file_ram) a.insert(a.end(), {"-object", "memory-backend-ram,id=ram," + size, "-machine", "memory-backend=ram"});
  if (file_ram) {
    std::string path = qemu_escape(l.memory_file.string());
    if (l.memory_fd >= 0) {
      cmd.fds.emplace_back(l.memory_fd, next_fd);
      path = "/proc/self/fd/" + std::to_string(next_fd++);
    }
    const bool shared = l.memory_file_shared || l.memory_fd >= 0;
    a.insert(a.end(), {"-object",
                       "memory-backend-file,id=ram," + size + ",mem-path=" + path + ",share=" + (shared ? "on" : "off"),
                       "-machine", "memory-backend=ram"});
  }
  // vhost-user back-ends refuse legacy (version 1) virtio-mmio devices.
  if (l.vhost_user && l.machine == "microvm") a.insert(a.end(), {"-global", "virtio-mmio.force-legacy=false"});
}

void add_kernel(const QemuLaunch& l, std::vector<std::string>& a) {
  // reboot=t: a guest reboot (or a panic, with panic=-1) triple-faults,
  // which QEMU turns into a reset and, with -no-reboot, an exit. The
  // default path ends in the firmware's reset vector, and a VM resumed from
  // a boot template has no kernel for the firmware to boot again: it would
  // sit there instead of ending.
  std::string cmdline = l.cmdline + " reboot=t gondolin.rootfs=" + l.rootfs_mode;
  // Under TCG the guest's TSC is the host's, at the host's rate; its timer
  // interrupts are late whenever the host is busy, so the clocksource
  // watchdog, judging the TSC by them, can mark it unstable and leave the
  // guest on jiffies, whose clock then runs slow (10 s took 14 s here, and a
  // boot template keeps that for every clone). tsc=reliable keeps the TSC.
  if (l.accel != Accel::Kvm && l.machine == "microvm" && l.tsc_khz)
    cmdline += " tsc_early_khz=" + std::to_string(*l.tsc_khz) + " tsc=reliable";
  if (!l.kernel.empty())
    a.insert(a.end(), {"-kernel", l.kernel.string(), "-initrd", l.initrd.string(), "-append", cmdline});
}

// The virtio-serial device: ports 1.. are the control port and the devices'
// (port 0 is kept for a console). Layout 1 had QEMU's default of 31.
std::string serial_device(const QemuLaunch& l) {
  std::string device = virtio_device(l.machine, "virtio-serial");
  if (l.device_layout < 2) return device;
  std::size_t ports = 2;
  for (const auto& d : l.devices)
    ports += static_cast<std::size_t>(std::count_if(
        d.args.begin(), d.args.end(), [](const std::string& arg) { return arg.rfind("virtserialport,", 0) == 0; }));
  return device + ",max_ports=" + std::to_string(ports);
}

// Disks, the control port, the console, QMP and the caller's fd devices.
void add_devices(const QemuLaunch& l, QemuCommand& cmd, std::vector<std::string>& a, int& next_fd) {
  auto dev = [&](const std::string& base) { return virtio_device(l.machine, base); };
  // Layout 3. After every incoming migration (a resume, a boot template's
  // clone) QEMU has a NIC with GUEST_ANNOUNCE make the guest send gratuitous
  // ARP and IPv6 neighbour adverts, five rounds over ~0.8 s, for switches
  // after a live migration: 60-90 ms of CPU a resume under TCG, on the first
  // command's path. A gondolin guest's only peer is our own stack, which
  // knows its address. (QEMU sends its own RARP frames instead, which the
  // stack drops. migration.announce-rounds=0 would do it without a device
  // change, but QEMU 10.0 then crashes on the guest's next NIC reset.)
  if (l.device_layout >= 3) a.insert(a.end(), {"-global", "virtio-net-device.guest_announce=off"});
  // The agent finds its disks by serial: device order differs between buses.
  a.insert(a.end(), {"-drive", "file=" + qemu_escape(l.rootfs.string()) + ",format=raw,if=none,id=root,readonly=on",
                     "-device", dev("virtio-blk") + ",drive=root,serial=gondolin-root"});
  if (!l.writable_disk.empty())
    a.insert(a.end(),
             {"-drive", "file=" + qemu_escape(l.writable_disk.string()) + ",format=raw,if=none,id=upper,discard=unmap",
              "-device", dev("virtio-blk") + ",drive=upper,serial=gondolin-upper"});
  a.insert(a.end(), {"-device", serial_device(l), "-chardev", "socket,id=control,fd=3", "-device",
                     std::string("virtserialport,chardev=control,name=") + proto::kControlPortName});
  a.insert(a.end(), {"-chardev", "socket,id=console,fd=4", "-serial", "chardev:console"});
  if (l.qmp_fd >= 0) {
    cmd.fds.emplace_back(l.qmp_fd, 5);
    a.insert(a.end(), {"-chardev", "socket,id=qmp,fd=5", "-mon", "chardev=qmp,mode=control"});
  }
  for (const auto& d : l.devices) {
    if (d.parent_fd < 0) throw Error(ErrorKind::Internal, "device without a descriptor");
    int child_fd = next_fd++;
    cmd.fds.emplace_back(d.parent_fd, child_fd);
    for (std::string arg : d.args) {
      for (auto pos = arg.find("{fd}"); pos != std::string::npos; pos = arg.find("{fd}"))
        arg.replace(pos, 4, std::to_string(child_fd));
      a.push_back(std::move(arg));
    }
  }
}

}  // namespace

QemuCommand build_qemu_command(const QemuLaunch& l) {
  check_launch(l);
  QemuCommand cmd;
  // QEMU sees the control socket as fd 3, the console as 4, QMP as 5, the
  // RAM file's descriptor (if any) and devices from 6 on.
  cmd.fds = {{l.control_fd, 3}, {l.console_fd, 4}};
  int next_fd = 6;
  std::vector<std::string> a{
      l.qemu_binary.string(), "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"};
  add_machine(l, a);
  add_memory(l, cmd, a, next_fd);
  add_kernel(l, a);
  add_devices(l, cmd, a, next_fd);
  a.insert(a.end(), l.extra_args.begin(), l.extra_args.end());
  cmd.incoming_uri = l.incoming_uri;
  if (l.incoming_fd >= 0) {
    cmd.fds.emplace_back(l.incoming_fd, next_fd);
    cmd.incoming_uri = "fd:" + std::to_string(next_fd++);
  }
  if (!cmd.incoming_uri.empty())
    a.insert(a.end(), {"-S", "-incoming", l.incoming_deferred ? "defer" : cmd.incoming_uri});
  cmd.argv = std::move(a);
  return cmd;
}

}  // namespace gondolin::vm
