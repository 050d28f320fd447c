#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "cli/vm_flags.h"
#include "gondolin/error.h"
#include "gondolin/image.h"
#include "proto/control_protocol.h"
#include "util/files.h"
#include "vfs/temp_dir.h"
#include "vm/accel.h"
#include "vm/boot_template.h"
#include "vm/qemu_command.h"
#include "vm/qemu_version.h"
#include "vm/vm_internals.h"

using namespace gondolin;

namespace {

bool has_pair(const std::vector<std::string>& argv, const std::string& a, const std::string& b) {
  for (std::size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == a && argv[i + 1] == b) return true;
  return false;
}

vm::QemuLaunch base_launch() {
  vm::QemuLaunch l;
  l.qemu_binary = "/usr/bin/qemu-system-x86_64";
  l.kernel = "/img/kernel";
  l.initrd = "/img/initramfs.cpio";
  l.rootfs = "/img/a,b/rootfs.ext4";
  l.cmdline = "quiet";
  l.control_fd = 10;
  l.console_fd = 11;
  return l;
}

// ---- Boot templates ----------------------------------------------------------

vm::QemuLaunch launch_with_ram(bool shared) {
  vm::QemuLaunch l = base_launch();
  l.memory_file = "/cache/t,1/ram";
  l.memory_file_shared = shared;
  return l;
}

Image fake_image(const std::filesystem::path& dir, const std::string& manifest_text) {
  write_file_atomic(dir / "manifest.json", manifest_text);
  Image image;
  image.dir = dir;
  image.manifest.id = "0123456789abcdef";
  image.manifest.kernel.file = "vmlinux";
  image.manifest.initramfs.file = "initramfs.cpio";
  image.manifest.rootfs.file = "rootfs.ext4";
  image.manifest.cmdline = "console=ttyS0";
  return image;
}

}  // namespace

TEST(QemuCommand, MicrovmTcg) {
  auto l = base_launch();
  l.tsc_khz = 2100000;
  auto cmd = vm::build_qemu_command(l);
  EXPECT_TRUE(has_pair(cmd.argv, "-accel", "tcg"));
  EXPECT_TRUE(has_pair(cmd.argv, "-cpu", "max"));
  EXPECT_TRUE(has_pair(cmd.argv, "-append", "quiet reboot=t gondolin.rootfs=memory tsc_early_khz=2100000 tsc=reliable"))
      << "the host's TSC rate, and the TSC kept as the guest's clock under TCG";
  EXPECT_TRUE(has_pair(cmd.argv, "-device", "virtio-blk-device,drive=root,serial=gondolin-root"));
  EXPECT_TRUE(has_pair(cmd.argv, "-drive", "file=/img/a,,b/rootfs.ext4,format=raw,if=none,id=root,readonly=on"))
      << "commas in paths are escaped and the image is attached read-only";
  EXPECT_EQ(cmd.fds, (std::vector<std::pair<int, int>>{{10, 3}, {11, 4}}));
  EXPECT_TRUE(has_pair(cmd.argv, "-sandbox", "on,obsolete=deny,elevateprivileges=deny,resourcecontrol=deny"));
}

TEST(QemuCommand, Q35KvmUsesPciAndNoTscHint) {
  auto l = base_launch();
  l.machine = "q35";
  l.accel = Accel::Kvm;
  l.tsc_khz = 2100000;
  auto cmd = vm::build_qemu_command(l);
  EXPECT_TRUE(has_pair(cmd.argv, "-accel", "kvm"));
  EXPECT_TRUE(has_pair(cmd.argv, "-cpu", "host"));
  EXPECT_TRUE(has_pair(cmd.argv, "-append", "quiet reboot=t gondolin.rootfs=memory"));
  EXPECT_TRUE(has_pair(cmd.argv, "-device", "virtio-blk-pci,drive=root,serial=gondolin-root"));
}

TEST(QemuCommand, CowRootGetsItsOwnWritableDisk) {
  auto l = base_launch();
  l.rootfs_mode = "cow";
  l.writable_disk = "/cache/disks/1-ab/rootfs-rw.img";
  auto cmd = vm::build_qemu_command(l);
  EXPECT_TRUE(has_pair(cmd.argv, "-append", "quiet reboot=t gondolin.rootfs=cow"));
  EXPECT_TRUE(
      has_pair(cmd.argv, "-drive", "file=/cache/disks/1-ab/rootfs-rw.img,format=raw,if=none,id=upper,discard=unmap"))
      << "writable (no readonly=on), holes punched on guest discard";
  EXPECT_TRUE(has_pair(cmd.argv, "-device", "virtio-blk-device,drive=upper,serial=gondolin-upper"));
}

TEST(QemuCommand, DevicesGetSequentialDescriptors) {
  auto l = base_launch();
  l.devices.push_back({{"-netdev", "stream,id=n,addr.type=fd,addr.str={fd}"}, 20});
  l.devices.push_back({{"-chardev", "socket,id=fs,fd={fd}"}, 21});
  auto cmd = vm::build_qemu_command(l);
  EXPECT_TRUE(has_pair(cmd.argv, "-netdev", "stream,id=n,addr.type=fd,addr.str=6"));
  EXPECT_TRUE(has_pair(cmd.argv, "-chardev", "socket,id=fs,fd=7"));
  EXPECT_EQ(cmd.fds.size(), 4u);
}

// A state read from our descriptor is `fd:N` after the devices' numbers;
// deferred, QEMU waits (`-incoming defer`) and is told the URI later.
TEST(QemuCommand, IncomingStateFromADescriptorOrAUri) {
  auto l = base_launch();
  l.devices.push_back({{"-chardev", "socket,id=fs,fd={fd}"}, 21});
  l.incoming_fd = 30;
  auto cmd = vm::build_qemu_command(l);
  EXPECT_TRUE(has_pair(cmd.argv, "-incoming", "fd:7"));
  EXPECT_EQ(cmd.incoming_uri, "fd:7");
  EXPECT_EQ(cmd.fds.back(), (std::pair<int, int>{30, 7}));
  l.incoming_deferred = true;
  cmd = vm::build_qemu_command(l);
  EXPECT_TRUE(has_pair(cmd.argv, "-incoming", "defer"));
  EXPECT_EQ(cmd.incoming_uri, "fd:7");
  auto piped = base_launch();
  piped.incoming_uri = "exec:zstd -q -dc state.zst";
  cmd = vm::build_qemu_command(piped);
  EXPECT_TRUE(has_pair(cmd.argv, "-incoming", "exec:zstd -q -dc state.zst"));
  EXPECT_EQ(std::count(cmd.argv.begin(), cmd.argv.end(), "-S"), 1);
  auto booted = vm::build_qemu_command(base_launch()).argv;
  EXPECT_EQ(std::count(booted.begin(), booted.end(), "-incoming"), 0);
}

// virtio-serial gets the ports the VM uses (port 0 is a console's, 1 the
// control port's), not QEMU's 31: each port is two queues whose eventfds
// QEMU's main loop polls at every wake-up. Snapshots of layout 1 keep 31.
TEST(QemuCommand, SerialPortsAreTheOnesInUse) {
  auto l = base_launch();
  EXPECT_TRUE(has_pair(vm::build_qemu_command(l).argv, "-device", "virtio-serial-device,max_ports=2"));
  l.devices.push_back({vm::mount_device_args(l.machine, "gondolin.fs0", false), 20});
  l.devices.push_back({vm::mount_device_args(l.machine, "gondolin.fs1", true), 21});
  l.devices.push_back({vm::mount_device_args(l.machine, "gondolin.fs2", false), 22});
  EXPECT_TRUE(has_pair(vm::build_qemu_command(l).argv, "-device", "virtio-serial-device,max_ports=4"));
  l.device_layout = 1;
  EXPECT_TRUE(has_pair(vm::build_qemu_command(l).argv, "-device", "virtio-serial-device"));
}

// Layout 3: a restored guest is not made to announce itself on the network.
TEST(QemuCommand, TheNicAnnouncesNothingFromLayoutThree) {
  auto l = base_launch();
  EXPECT_TRUE(has_pair(vm::build_qemu_command(l).argv, "-global", "virtio-net-device.guest_announce=off"));
  l.device_layout = 2;
  EXPECT_FALSE(has_pair(vm::build_qemu_command(l).argv, "-global", "virtio-net-device.guest_announce=off"));
}

TEST(QemuCommand, RejectsNonsense) {
  auto l = base_launch();
  l.machine = "pc-i440fx-9000";
  EXPECT_THROW(vm::build_qemu_command(l), Error);
  l = base_launch();
  l.memory_mib = 16;
  EXPECT_THROW(vm::build_qemu_command(l), Error);
  l = base_launch();
  l.accel = Accel::Auto;
  EXPECT_THROW(vm::build_qemu_command(l), Error);
}

// The default mount transport is virtio-fs only where QEMU can snapshot it.
TEST(QemuVersion, ParsesTheVersionLineAndKnowsVirtiofsMigration) {
  auto v = parse_qemu_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->text(), "10.0.2");
  EXPECT_TRUE(qemu_migrates_virtiofs(*v));
  auto old = parse_qemu_version("QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)");
  ASSERT_TRUE(old);
  EXPECT_FALSE(qemu_migrates_virtiofs(*old));
  EXPECT_TRUE(qemu_migrates_virtiofs(*parse_qemu_version("QEMU emulator version 8.2.0")));
  EXPECT_FALSE(qemu_migrates_virtiofs(*parse_qemu_version("QEMU emulator version 8.1.5")));
  EXPECT_FALSE(parse_qemu_version("qemu-system-x86_64: command not found"));
  EXPECT_FALSE(parse_qemu_version("QEMU emulator version ten"));
}

TEST(Accel, PvmHostNeverGetsKvmAutomatically) {
  vm::AccelFacts f;
  f.kvm_device_usable = true;
  f.pvm_host = true;
  auto c = vm::decide_accel(Accel::Auto, f);
  EXPECT_EQ(c.accel, Accel::Tcg);
  EXPECT_NE(c.reason.find("PVM"), std::string::npos);
}

TEST(Accel, AutoFollowsTheProbe) {
  vm::AccelFacts f;
  f.kvm_device_usable = true;
  f.probe_ran_guest = true;
  EXPECT_EQ(vm::decide_accel(Accel::Auto, f).accel, Accel::Kvm);
  f.probe_ran_guest = false;
  EXPECT_EQ(vm::decide_accel(Accel::Auto, f).accel, Accel::Tcg);
  f.kvm_device_usable = false;
  f.kvm_device_error = "No such file or directory";
  EXPECT_EQ(vm::decide_accel(Accel::Auto, f).accel, Accel::Tcg);
}

TEST(Accel, ExplicitChoicesWin) {
  vm::AccelFacts f;
  f.kvm_device_usable = true;
  f.pvm_host = true;
  EXPECT_EQ(vm::decide_accel(Accel::Kvm, f).accel, Accel::Kvm);
  EXPECT_EQ(vm::decide_accel(Accel::Tcg, f).accel, Accel::Tcg);
  f.kvm_device_usable = false;
  EXPECT_THROW(vm::decide_accel(Accel::Kvm, f), Error);
}

TEST(Accel, ThisHostDecidesWithoutHanging) {
  // On a PVM host (like CI here) this must return TCG at once; elsewhere it
  // must at least return within the probe's bound.
  auto start = std::chrono::steady_clock::now();
  auto c = vm::choose_accel(Accel::Auto);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_NE(c.accel, Accel::Auto);
}

TEST(CliFlags, EnvAssignments) {
  EXPECT_EQ(cli::parse_env_assignment("A=1"), (std::pair<std::string, std::string>{"A", "1"}));
  EXPECT_EQ(cli::parse_env_assignment("A_B="), (std::pair<std::string, std::string>{"A_B", ""}));
  EXPECT_EQ(cli::parse_env_assignment("X=a=b"), (std::pair<std::string, std::string>{"X", "a=b"}));
  for (const char* bad : {"A", "=1", "1A=x", "A B=1", "A-B=1", ""})
    EXPECT_THROW(cli::parse_env_assignment(bad), Error) << bad;
}

TEST(CliFlags, MemorySizes) {
  EXPECT_EQ(cli::parse_memory_mib("512"), 512u);
  EXPECT_EQ(cli::parse_memory_mib("512M"), 512u);
  EXPECT_EQ(cli::parse_memory_mib("2G"), 2048u);
  EXPECT_EQ(cli::parse_memory_mib("1T"), 1024u * 1024) << "the largest QEMU is asked for";
  for (const char* bad : {"", "G", "12", "2T", "-5", "abc", "99999999999999999999G"})
    EXPECT_THROW(cli::parse_memory_mib(bad), Error) << bad;
}

TEST(CliFlags, DiskSizesAndRootfsModes) {
  EXPECT_EQ(cli::parse_size_bytes("--rootfs-size", "2G"), std::uint64_t{2} << 30);
  EXPECT_EQ(cli::parse_size_bytes("--rootfs-size", "100M"), std::uint64_t{100} << 20);
  EXPECT_EQ(cli::parse_size_bytes("--rootfs-size", "1T"), std::uint64_t{1} << 40);
  for (const char* bad : {"", "T", "2P", "-1G", "1.5G", "20000000000T"})
    EXPECT_THROW(cli::parse_size_bytes("--rootfs-size", bad), Error) << bad;
  EXPECT_EQ(cli::parse_rootfs_mode("cow"), RootfsMode::Cow);
  EXPECT_EQ(cli::parse_rootfs_mode("memory"), RootfsMode::Memory);
  EXPECT_EQ(cli::parse_rootfs_mode("readonly"), RootfsMode::Readonly);
  EXPECT_THROW(cli::parse_rootfs_mode("ro"), Error);
}

TEST(CliFlags, GuestUsers) {
  EXPECT_EQ(cli::parse_guest_user("root"), (GuestUser{0, 0}));
  EXPECT_EQ(cli::parse_guest_user("1000"), (GuestUser{1000, 1000}));
  EXPECT_EQ(cli::parse_guest_user("1000:50"), (GuestUser{1000, 50}));
  for (const char* bad : {"", "app", "1000:", ":5", "-1", "4294967295", "1:2:3", "99999999999"})
    EXPECT_THROW(cli::parse_guest_user(bad), Error) << bad;
}

// Boot templates without a VM: which starts may use one, what their key
// depends on, how their RAM reaches QEMU, and the identity a start gets.

TEST(BootTemplate, RamIsTheTemplateFileSharedWhenMadePrivateWhenResumed) {
  auto made = vm::build_qemu_command(launch_with_ram(true)).argv;
  EXPECT_TRUE(has_pair(made, "-object", "memory-backend-file,id=ram,size=512M,mem-path=/cache/t,,1/ram,share=on"));
  EXPECT_TRUE(has_pair(made, "-machine", "memory-backend=ram"));
  auto resumed = vm::build_qemu_command(launch_with_ram(false)).argv;
  EXPECT_TRUE(has_pair(resumed, "-object", "memory-backend-file,id=ram,size=512M,mem-path=/cache/t,,1/ram,share=off"))
      << "clones map the template copy-on-write and never write it";
  auto resumed_launch = launch_with_ram(false);
  resumed_launch.kernel.clear();
  auto nothing_to_boot = vm::build_qemu_command(resumed_launch).argv;
  EXPECT_EQ(std::count(nothing_to_boot.begin(), nothing_to_boot.end(), "-kernel"), 0)
      << "a template's RAM holds the booted kernel; QEMU need not load one";
  auto private_with_virtiofs = launch_with_ram(false);
  private_with_virtiofs.vhost_user = true;
  EXPECT_THROW(vm::build_qemu_command(private_with_virtiofs), Error) << "a vhost-user back-end cannot see private RAM";
}

// A start with virtio-fs mounts gets its own copy of the template's RAM as
// an open descriptor, mapped shared, and modern virtio-mmio devices.
TEST(BootTemplate, ACopyOfTheRamIsHandedOverAsADescriptor) {
  vm::QemuLaunch l = base_launch();
  l.vhost_user = true;
  l.memory_fd = 42;
  l.devices.push_back({vm::mount_device_args("microvm", "gondolin.fs0", true), 43});
  auto cmd = vm::build_qemu_command(l);
  EXPECT_TRUE(has_pair(cmd.argv, "-object", "memory-backend-file,id=ram,size=512M,mem-path=/proc/self/fd/6,share=on"));
  EXPECT_TRUE(has_pair(cmd.argv, "-global", "virtio-mmio.force-legacy=false"));
  EXPECT_TRUE(has_pair(cmd.argv, "-device", "vhost-user-fs-device,chardev=cfs0,tag=gondolin.fs0,queue-size=1024"));
  EXPECT_TRUE(has_pair(cmd.argv, "-chardev", "socket,id=cfs0,fd=7")) << "the RAM descriptor comes before the devices";
  EXPECT_NE(std::find(cmd.fds.begin(), cmd.fds.end(), std::make_pair(42, 6)), cmd.fds.end());
  EXPECT_NE(std::find(cmd.fds.begin(), cmd.fds.end(), std::make_pair(43, 7)), cmd.fds.end());
  EXPECT_EQ(vm::mount_device_args("q35", "gondolin.fs2", false),
            (std::vector<std::string>{"-chardev", "socket,id=cfs2,fd={fd}", "-device",
                                      "virtserialport,chardev=cfs2,name=gondolin.fs2"}));
}

TEST(BootTemplate, MountsTakeTheFirstOfFourSlots) {
  using vfs::FsTransport;
  EXPECT_TRUE(vm::template_mount_slots({}).empty()) << "no mounts: no slots, and RAM stays copy-on-write";
  EXPECT_EQ(vm::template_mount_slots({FsTransport::Virtiofs}), std::vector<FsTransport>(4, FsTransport::Virtiofs));
  EXPECT_EQ(vm::template_mount_slots({FsTransport::Serial}), std::vector<FsTransport>(4, FsTransport::Serial));
  EXPECT_EQ(vm::template_mount_slots({FsTransport::Serial, FsTransport::Virtiofs}),
            (std::vector<FsTransport>{FsTransport::Serial, FsTransport::Virtiofs, FsTransport::Virtiofs,
                                      FsTransport::Virtiofs}));
  EXPECT_TRUE(vm::template_mount_slots(std::vector<FsTransport>(5, FsTransport::Serial)).empty());
}

TEST(BootTemplate, OnlyStartsAsTheTemplateWasMadeUseIt) {
  VmOptions o;
  EXPECT_EQ(vm::template_unsuitable(o, VmHooks{}), "");
  VmOptions cold = o;
  cold.cold = true;
  EXPECT_NE(vm::template_unsuitable(cold, VmHooks{}), "");
  VmOptions mounted = o;
  for (int i = 0; i < 4; ++i) mounted.mounts.push_back(vfs::Mount{"/data" + std::to_string(i), vfs::memory(), {}});
  EXPECT_EQ(vm::template_unsuitable(mounted, VmHooks{}), "") << "mounts fill the template's slots";
  mounted.mounts.push_back(vfs::Mount{"/data4", vfs::memory(), {}});
  EXPECT_NE(vm::template_unsuitable(mounted, VmHooks{}), "") << "more mounts than slots";
  VmHooks bench;
  bench.qemu_extra_args = {"-device", "virtio-9p-device"};
  EXPECT_NE(vm::template_unsuitable(o, bench), "");
  VmHooks mtu;
  mtu.mtu = 1500;
  EXPECT_NE(vm::template_unsuitable(o, mtu), "") << "the MTU is given at boot, by DHCP";
  ::setenv("GONDOLIN_COLD", "1", 1);
  EXPECT_NE(vm::template_unsuitable(o, VmHooks{}), "");
  ::unsetenv("GONDOLIN_COLD");
}

// Anything the saved machine depends on changes the key; per-start identity does not.
TEST(BootTemplate, KeyFollowsTheShapeNotTheIdentity) {
  vfs::testing::TempDir dir;
  Image image = fake_image(dir.path(), "{\"a\":1}");
  VmOptions o;
  const auto base = vm::template_key(image, o, Accel::Tcg, "CA").id;
  EXPECT_EQ(base.size(), 16u);
  auto key_with = [&](auto change) {
    VmOptions c = o;
    change(c);
    return vm::template_key(image, c, Accel::Tcg, "CA").id;
  };
  EXPECT_EQ(key_with([](VmOptions& c) {
              c.hostname = "other";
              c.env.emplace_back("A", "b");
              c.network.allow_hosts = {"example.com"};
            }),
            base);
  EXPECT_NE(key_with([](VmOptions& c) { c.memory_mib = 1024; }), base);
  EXPECT_NE(key_with([](VmOptions& c) { c.cpus = 2; }), base);
  EXPECT_NE(key_with([](VmOptions& c) { c.machine = "q35"; }), base);
  EXPECT_NE(key_with([](VmOptions& c) { c.rootfs_mode = RootfsMode::Memory; }), base);
  EXPECT_NE(key_with([](VmOptions& c) { c.rootfs_size_bytes *= 2; }), base);
  EXPECT_NE(key_with([](VmOptions& c) { c.network.enabled = false; }), base);
  EXPECT_NE(vm::template_key(image, o, Accel::Kvm, "CA").id, base);
  EXPECT_NE(vm::template_key(image, o, Accel::Tcg, "another CA").id, base);
  const auto serial_slots =
      vm::template_key(image, o, Accel::Tcg, "CA", vm::template_mount_slots({vfs::FsTransport::Serial})).id;
  const auto virtiofs_slots =
      vm::template_key(image, o, Accel::Tcg, "CA", vm::template_mount_slots({vfs::FsTransport::Virtiofs})).id;
  EXPECT_NE(serial_slots, base);
  EXPECT_NE(virtiofs_slots, base);
  EXPECT_NE(serial_slots, virtiofs_slots);
  Image rebuilt = fake_image(dir.path(), "{\"a\":2}");
  EXPECT_NE(vm::template_key(rebuilt, o, Accel::Tcg, "CA").id, base) << "another build of the image";
}

TEST(BootTemplate, ConfigCarriesTheStartsIdentity) {
  proto::Config c;
  c.realtime_ns = 1;
  c.hostname = "h";
  c.mac = std::string("\x52\x54\x00\x01\x02\x03", 6);
  c.machine_id = std::string(32, 'a');
  proto::PayloadWriter w;
  c.encode(w);
  proto::PayloadReader r(w.data().data(), w.data().size());
  auto back = proto::Config::decode(r);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->mac, c.mac);
  EXPECT_EQ(back->machine_id, c.machine_id);
  for (auto bad :
       {std::make_pair(std::string(5, 'x'), std::string()), std::make_pair(std::string(), std::string(31, 'a')),
        std::make_pair(std::string(), std::string(32, 'A')),
        std::make_pair(std::string(), "../" + std::string(29, 'a'))}) {
    proto::Config b = c;
    b.mac = bad.first;
    b.machine_id = bad.second;
    proto::PayloadWriter bw;
    b.encode(bw);
    proto::PayloadReader br(bw.data().data(), bw.data().size());
    EXPECT_FALSE(proto::Config::decode(br))
        << "mac " << bad.first.size() << " bytes, machine id '" << bad.second << "'";
  }
}
