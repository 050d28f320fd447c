// Snapshots of sessions with mounts: the guest keeps its FUSE mounts (node
// ids, open files) across a snapshot and the resumed process rebuilds them,
// over virtio-serial (state in the snapshot's mount files) and over
// virtio-fs (state in QEMU's own device state, which gondolin serves as the
// vhost-user back-end).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include "gondolin/error.h"
#include "gondolin/session.h"
#include "gondolin/vm.h"
#include "test_support.h"

using namespace gondolin;
using gondolin::testing::host_sh;
using gondolin::testing::slurp;
using gondolin::testing::spit;
using gondolin::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// ---- Snapshot and resume ----------------------------------------------------------

// The guest keeps its FUSE mounts (node ids, open files) across a snapshot;
// the resumed process rebuilds the same mounts from the snapshot's
// description, so the mount keeps working, and a file held open across the
// snapshot is still written to the same host file.
class VfsResumeOver : public ::testing::TestWithParam<vfs::FsTransport> {};
INSTANTIATE_TEST_SUITE_P(Transports, VfsResumeOver,
                         ::testing::Values(vfs::FsTransport::Serial, vfs::FsTransport::Virtiofs),
                         [](const auto& p) { return p.param == vfs::FsTransport::Serial ? "serial" : "virtiofs"; });

TEST_P(VfsResumeOver, HostfsMountKeepsWorkingAfterResume) {
  TempDir host, tmp;
  spit(host.path() / "from-host.txt", "host\n");
  fs::path snap = tmp.path() / "snap";
  {
    VmOptions o;
    vfs::MountOptions mo;
    mo.transport = GetParam();
    o.mounts.push_back({"/work", vfs::hide(vfs::host_dir(host.path()), {"**/.env"}), mo});
    o.mounts.push_back({"/ro", vfs::read_only(vfs::host_dir(host.path())), mo});
    Vm vm = Vm::create(o);
    auto r =
        vm.exec(std::string("set -e; echo before > /work/written.txt; cat /work/from-host.txt; mkfifo /tmp/go;"
                            "(exec 3>>/work/held.txt; echo held-before >&3; read x < /tmp/go; echo held-after >&3;"
                            " exec 3>&-; touch /work/done) > /dev/null 2>&1 &"
                            "for i in $(seq 100); do [ -s /work/held.txt ] && break; sleep 0.1; done"));
    ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
    EXPECT_EQ(r.stdout_data, "host\n");
    vm.snapshot(snap);
  }
  EXPECT_EQ(slurp(host.path() / "written.txt"), "before\n");
  spit(host.path() / "later.txt", "after the snapshot\n");
  spit(host.path() / ".env", "TOKEN=1");

  Vm resumed = Vm::resume(snap.string(), {});
  auto r =
      resumed.exec(std::string("set -e; cat /work/written.txt /work/later.txt; echo resumed >> /work/written.txt;"
                               "echo go > /tmp/go; for i in $(seq 100); do [ -e /work/done ] && break; sleep 0.1; done;"
                               "cat /work/held.txt; ls -A /work | sort | tr '\\n' ' '; echo; cat /ro/written.txt;"
                               "if touch /ro/x 2>/dev/null; then echo ro-writable; fi; cat /work/.env 2>&1 || true"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data,
            "before\nafter the snapshot\nheld-before\nheld-after\n"
            "done from-host.txt held.txt later.txt written.txt \n"
            "before\nresumed\n"
            "cat: /work/.env: No such file or directory\n");
  EXPECT_EQ(slurp(host.path() / "written.txt"), "before\nresumed\n");
  EXPECT_EQ(slurp(host.path() / "held.txt"), "held-before\nheld-after\n");
}

// A host directory that is gone by resume time is a one-line error naming
// it, before QEMU starts; the snapshot is untouched and resumes once the
// directory is back. A resumer cannot add mounts of its own.
TEST(VfsResume, MovedHostDirIsAClearErrorAndChangesNothing) {
  TempDir tmp;
  fs::path dir = tmp.path() / "project";
  spit(dir / "f.txt", "kept\n");
  fs::path snap = tmp.path() / "snap";
  {
    VmOptions o;
    o.mounts.push_back({"/p", vfs::host_dir(dir)});
    Vm vm = Vm::create(o);
    ASSERT_EQ(vm.exec(std::vector<std::string>{"cat", "/p/f.txt"}).stdout_data, "kept\n");
    vm.snapshot(snap);
  }
  std::string manifest_before = slurp(snap / "manifest.json");
  fs::rename(dir, tmp.path() / "moved");
  auto r = gondolin::testing::run_gondolin({"exec", "--resume", snap.string(), "--", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_NE(r.err.find("host directory " + dir.string() + " at /p"), std::string::npos) << r.err;
  try {
    Vm::resume(snap.string(), {});
    ADD_FAILURE() << "resumed without its host directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.string()), std::string::npos) << e.what();
  }
  EXPECT_EQ(slurp(snap / "manifest.json"), manifest_before);

  auto extra =
      gondolin::testing::run_gondolin({"exec", "--resume", snap.string(), "--mount-memfs", "/m", "--", "true"});
  EXPECT_EQ(extra.exit_code, 125);
  EXPECT_NE(extra.err.find("cannot be combined with --resume"), std::string::npos) << extra.err;

  fs::rename(tmp.path() / "moved", dir);
  Vm resumed = Vm::resume(snap.string(), {});
  EXPECT_EQ(resumed.exec(std::vector<std::string>{"cat", "/p/f.txt"}).stdout_data, "kept\n");
}

// A memory mount's files live in this process: the snapshot saves them
// beside the guest's RAM, and every resume gets its own copy, with a file the
// guest held open still open. Over both transports (the default is virtio-fs).
TEST_P(VfsResumeOver, MemfsMountComesBackWithItsFiles) {
  TempDir tmp;
  vfs::MountOptions mo;
  mo.transport = GetParam();
  {
    VmOptions o;
    o.mounts.push_back({"/mem", vfs::memory(), mo});
    Vm vm = Vm::create(o);
    auto r = vm.exec(
        std::string("set -e; mkdir -p /mem/d; echo one > /mem/d/f; ln -s d/f /mem/l; mkfifo /tmp/go;"
                    "(exec 3>>/mem/held; echo before >&3; read x < /tmp/go; echo after >&3; exec 3>&-; touch /mem/done)"
                    " > /dev/null 2>&1 & for i in $(seq 100); do [ -s /mem/held ] && break; sleep 0.1; done"));
    ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
    vm.snapshot(tmp.path() / "snap");
  }
  for (const char* clone : {"first", "second"}) {
    Vm vm = Vm::resume((tmp.path() / "snap").string(), {});
    auto r = vm.exec(std::string("set -e; cat /mem/l; echo go > /tmp/go;"
                                 "for i in $(seq 100); do [ -e /mem/done ] && break; sleep 0.1; done;"
                                 "cat /mem/held; echo ") +
                     clone + " > /mem/d/f; cat /mem/d/f");
    ASSERT_EQ(r.exit_code, 0) << clone << ": " << r.stderr_data;
    EXPECT_EQ(r.stdout_data, std::string("one\nbefore\nafter\n") + clone + "\n") << clone;
  }
}

// A memory provider inside a wrapper would come back without its files:
// snapshotting it is refused up front and the session goes on.
TEST(VfsResume, WrappedMemfsMountRefusesSnapshot) {
  TempDir tmp;
  VmOptions o;
  o.mounts.push_back({"/mem", vfs::hide(vfs::memory(), {"*.pem"})});
  Vm vm = Vm::create(o);
  try {
    vm.snapshot(tmp.path() / "snap");
    ADD_FAILURE() << "snapshot of a wrapped memfs mount was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the mount at /mem cannot be part of a snapshot"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp.path() / "snap"));
  EXPECT_EQ(vm.exec(std::string("echo x > /mem/f; cat /mem/f")).stdout_data, "x\n");
}

// ---- over virtio-fs ------------------------------------------------------------------

vfs::MountOptions virtiofs() {
  vfs::MountOptions mo;
  mo.transport = vfs::FsTransport::Virtiofs;
  return mo;
}

// Runs in the guest before the snapshot and goes on in every clone: holds
// in.bin open (read 1000 bytes), gone.bin open, and log.txt open for
// appending, writing "orig" until the clone is named in /tmp/clone; then
// reads the next 1000 bytes of in.bin past the page cache (so through the
// host's re-opened handle), tries gone.bin, and appends its name 5 times.
constexpr const char* kHolder = R"(import os, time
fd = os.open("/v/in.bin", os.O_RDONLY)
gone = os.open("/v/gone.bin", os.O_RDONLY)
log = os.open("/v/log.txt", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
open("/tmp/r1", "wb").write(os.read(fd, 1000))
while not os.path.exists("/tmp/clone"):
    os.write(log, b"orig\n")
    time.sleep(0.1)
name = open("/tmp/clone").read().strip()
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
open("/tmp/r2", "wb").write(os.read(fd, 1000))
try:
    os.posix_fadvise(gone, 0, 0, os.POSIX_FADV_DONTNEED)
    os.read(gone, 10)
    result = "read"
except OSError as e:
    result = str(e.errno)
open("/tmp/gone", "w").write(result)
for i in range(5):
    os.write(log, (name + "\n").encode())
open("/tmp/done", "w").write("1")
)";

std::size_t count_lines(const std::string& text, const std::string& line) {
  std::size_t n = 0;
  for (std::size_t pos = 0; (pos = text.find(line + "\n", pos)) != std::string::npos; pos += line.size() + 1)
    if (pos == 0 || text[pos - 1] == '\n') ++n;
  return n;
}

// The issue's scenario: a guest holding an open file on a virtio-fs host
// mount and a process writing to another; two resumes of one snapshot both
// continue (the read at the right offset, the writer's file growing), the
// host sees both clones' writes, and a file deleted meanwhile is ESTALE.
TEST(VfsVirtiofsResume, TwoClonesContinueWithOpenFiles) {
  TempDir tmp, dir;
  std::string data;
  for (int i = 0; data.size() < (1u << 20); ++i) data += std::to_string(i) + ",";
  spit(dir.path() / "in.bin", data);
  spit(dir.path() / "gone.bin", "soon gone\n");
  fs::path snap = tmp.path() / "snap";
  {
    VmOptions o;
    o.mounts.push_back({"/v", vfs::host_dir(dir.path()), virtiofs()});
    Vm vm = Vm::create(o);
    vm.write_file("/tmp/holder.py", kHolder);
    auto r =
        vm.exec(std::string("grep -q 'gondolin.fs0 /v virtiofs' /proc/mounts;"
                            "(python3 /tmp/holder.py > /tmp/holder.log 2>&1 &);"
                            "for i in $(seq 100); do [ -s /v/log.txt ] && break; sleep 0.1; done; test -s /tmp/r1"));
    ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
    vm.snapshot(snap);
  }
  fs::remove(dir.path() / "gone.bin");
  EXPECT_EQ(slurp(snap / "fs0.state"), "");  // the FUSE session travelled in QEMU's state

  Vm a = Vm::resume(snap.string(), {});
  Vm b = Vm::resume(snap.string(), {});
  for (auto [vm, name] : {std::pair<Vm*, std::string>{&a, "a"}, {&b, "b"}}) {
    auto r = vm->exec(std::string("echo " + name +
                                  " > /tmp/clone;"
                                  "for i in $(seq 100); do [ -e /tmp/done ] && break; sleep 0.1; done;"
                                  "cat /tmp/holder.log; cmp /tmp/r1 /tmp/r2 >/dev/null || echo moved; cat /tmp/r2"));
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.stderr_data;
    EXPECT_EQ(r.stdout_data, "moved\n" + data.substr(1000, 1000)) << name;
    // The guest may learn it from the handle (ESTALE) or from revalidating the name first (ENOENT).
    std::string gone = vm->exec(std::vector<std::string>{"cat", "/tmp/gone"}).stdout_data;
    EXPECT_TRUE(gone == "116" || gone == "2") << name << ": " << gone;
  }
  std::string log = slurp(dir.path() / "log.txt");
  EXPECT_GE(count_lines(log, "orig"), 1u) << log;
  EXPECT_EQ(count_lines(log, "a"), 5u) << log;
  EXPECT_EQ(count_lines(log, "b"), 5u) << log;
  // Both clones keep using the mount for new files too.
  EXPECT_EQ(a.exec(std::string("echo from-a > /v/new-a; cat /v/in.bin | head -c 3")).stdout_data, "0,1");
  EXPECT_EQ(b.exec(std::string("ls /v | sort | tr '\\n' ' '")).stdout_data, "in.bin log.txt new-a ");
  EXPECT_EQ(slurp(dir.path() / "new-a"), "from-a\n");
}

// The virtio-fs state inside QEMU's stream is untrusted input too: a
// snapshot whose state was rewritten (and re-hashed, as someone with write
// access to the snapshot could) fails to resume with one line naming the
// mount, exit 125, and the snapshot itself is left as it was.
TEST(VfsVirtiofsResume, DamagedDeviceStateIsAOneLineError) {
  TempDir tmp, dir;
  fs::path snap = tmp.path() / "snap";
  {
    VmOptions o;
    o.mounts.push_back({"/v", vfs::host_dir(dir.path()), virtiofs()});
    Vm vm = Vm::create(o);
    ASSERT_EQ(vm.exec(std::string("exec 3>/v/held; echo x > /v/f")).exit_code, 0);
    vm.snapshot(snap);
  }
  // Our state opens with "GVFS" and a u32 format version; then the FUSE
  // session's u32 length. Rewrite one or the other in QEMU's stream (kept
  // uncompressed: the RAM is beside it), re-hash.
  auto damaged = [&](const std::string& name, int field_offset, const std::string& bytes) {
    fs::path copy = tmp.path() / name;
    host_sh("cp -a " + snap.string() + " " + copy.string());
    std::string raw = slurp(copy / "state");
    std::size_t at = raw.find("GVFS");
    EXPECT_NE(at, std::string::npos);
    if (at == std::string::npos) return copy;
    raw.replace(at + static_cast<std::size_t>(field_offset), bytes.size(), bytes);
    spit(copy / "state", raw);
    auto doc = nlohmann::json::parse(slurp(copy / "manifest.json"));
    doc["state"]["sha256"] = host_sh("sha256sum " + (copy / "state").string()).substr(0, 64);
    spit(copy / "manifest.json", doc.dump());
    return copy;
  };
  fs::path new_format = damaged("new-format", 4, std::string("\x09\0\0\0", 4));
  fs::path truncated = damaged("truncated", 8, std::string("\xff\xff\0\0", 4));
  for (const auto& [copy, why] :
       {std::pair{new_format, std::string("has format 9")}, {truncated, std::string("truncated")}}) {
    std::string before = slurp(copy / "state");
    auto r = gondolin::testing::run_gondolin({"exec", "--resume", copy.string(), "--", "true"});
    EXPECT_EQ(r.exit_code, 125) << r.err;
    EXPECT_NE(r.err.find("the mount at /v: the saved file system state"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(slurp(copy / "state"), before);
  }
  Vm ok = Vm::resume(snap.string(), {});
  EXPECT_EQ(ok.exec(std::string("cat /v/f")).stdout_data, "x\n");
}

// A virtio-fs VM's RAM is ours: the snapshot keeps it beside the state as a
// sparse image of its non-zero pages, and a resume copies only those. A
// resumed 512 MiB guest used to hold all of its RAM (QEMU touched every
// page looking for zeros); a damaged image is one line, exit 125.
TEST(VfsVirtiofsResume, RamTravelsAsASparseImageThatIsChecked) {
  TempDir tmp, dir;
  fs::path snap = tmp.path() / "snap";
  {
    VmOptions o;
    o.memory_mib = 512;
    o.mounts.push_back({"/v", vfs::host_dir(dir.path()), virtiofs()});
    Vm vm = Vm::create(o);
    ASSERT_EQ(vm.exec(std::string("echo kept-in-ram > /dev/shm/marker")).exit_code, 0);
    vm.snapshot(snap);
  }
  auto doc = nlohmann::json::parse(slurp(snap / "manifest.json"));
  ASSERT_TRUE(doc.contains("ram")) << doc.dump();
  EXPECT_EQ(doc["ram"]["crc32c"].get<std::string>().size(), 8u) << "guest RAM is checked for damage by CRC-32C";
  EXPECT_EQ(fs::file_size(snap / "ram"), 512u << 20);
  EXPECT_LT(doc["ram"]["stored_bytes"].get<std::uint64_t>(), 256u << 20) << "zero pages are not stored";
  EXPECT_EQ(doc["state"]["file"], "state") << "devices only: kept as QEMU wrote it";
  EXPECT_LT(fs::file_size(snap / "state"), 4u << 20) << "the state holds devices only";
  EXPECT_FALSE(fs::exists(snap / "state.zst"));

  Vm vm = Vm::resume(snap.string(), {});
  EXPECT_EQ(vm.exec(std::string("cat /dev/shm/marker")).stdout_data, "kept-in-ram\n");
  std::string rss = host_sh("awk '/^VmRSS/ {print $2}' /proc/" + std::to_string(vm.info().qemu_pid) + "/status");
  EXPECT_LT(std::stoul(rss), 256u * 1024) << "QEMU's RSS in KiB after a resume: " << rss;
  vm.close();

  fs::path changed = tmp.path() / "changed", cut = tmp.path() / "cut", flipped = tmp.path() / "flipped";
  for (const auto& copy : {changed, cut, flipped})
    host_sh("cp -a --sparse=always " + snap.string() + " " + copy.string());
  // The state is checked before QEMU reads a byte of it.
  host_sh("printf 'XX' | dd of=" + (flipped / "state").string() + " bs=1 seek=100 conv=notrunc status=none");
  // Flip the first byte of the first data page.
  host_sh("python3 -c \"import os; f=os.open('" + (changed / "ram").string() +
          "', os.O_RDWR); at=os.lseek(f, 0, os.SEEK_DATA); b=os.pread(f, 1, at); "
          "os.pwrite(f, bytes([b[0] ^ 1]), at)\"");
  fs::resize_file(cut / "ram", 256u << 20);
  for (const auto& [copy, why] : {std::pair{changed, std::string("is damaged: the RAM image's crc32c does not match")},
                                  {cut, std::string("its RAM image ram is 268435456 bytes")},
                                  {flipped, std::string("is damaged: the state's sha256 does not match")}}) {
    auto r = gondolin::testing::run_gondolin({"exec", "--resume", copy.string(), "--", "true"});
    EXPECT_EQ(r.exit_code, 125) << r.err;
    EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace

// snapshot --keep-running forks a live session: the original carries on
// (its processes, its mount, its own writes) and the snapshot resumes as a
// second copy that shares everything up to the snapshot and nothing after.
TEST(VfsVirtiofsResume, KeepRunningForksALiveSession) {
  TempDir dir, tmp;
  fs::path snap = tmp.path() / "snap";
  VmOptions o;
  o.mounts.push_back({"/v", vfs::host_dir(dir.path()), virtiofs()});
  Vm original = Vm::create(o);
  ASSERT_EQ(original
                .exec(std::string("echo base > /tmp/mem; echo base > /v/shared;"
                                  "(while true; do echo t >> /tmp/ticks; sleep 0.2; done) > /dev/null 2>&1 &"))
                .exit_code,
            0);
  SnapshotInfo info = original.snapshot(snap, AfterSnapshot::KeepRunning);
  EXPECT_EQ(info.dir, snap);
  ASSERT_TRUE(original.running());
  auto r = original.exec(std::string("echo original >> /tmp/mem; echo original >> /v/shared; cat /tmp/mem"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "base\noriginal\n");

  Vm copy = Vm::resume(snap.string(), {});
  r =
      copy.exec(std::string("cat /tmp/mem; echo copy >> /v/shared; n=$(wc -l < /tmp/ticks); sleep 1;"
                            "[ $(wc -l < /tmp/ticks) -gt $n ] && echo ticking"));
  ASSERT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "base\nticking\n") << "the copy has the memory of the snapshot and its processes";
  r = original.exec(std::string("n=$(wc -l < /tmp/ticks); sleep 1; [ $(wc -l < /tmp/ticks) -gt $n ] && echo ticking"));
  EXPECT_EQ(r.stdout_data, "ticking\n");
  EXPECT_EQ(slurp(dir.path() / "shared"), "base\noriginal\ncopy\n") << "both write the host directory";
}
