// Host-served file systems in a real guest: real tools (git, tar, python),
// POSIX cases, read-only, memory and hidden mounts, and escape attempts whose
// outcome is checked on the host. One VM serves all the mounts.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <set>

#include "gondolin/error.h"
#include "gondolin/vm.h"
#include "test_support.h"

using namespace gondolin;
using gondolin::testing::host_sh;
using gondolin::testing::slurp;
using gondolin::testing::spit;
using gondolin::testing::TempDir;
namespace fs = std::filesystem;

namespace {

std::string quote(const std::string& s) { return "'" + s + "'"; }

// The suite runs once per transport: ctest sets GONDOLIN_TEST_MOUNT_TRANSPORT=virtiofs
// for the second run (tests/CMakeLists.txt).
bool virtiofs_under_test() {
  const char* t = std::getenv("GONDOLIN_TEST_MOUNT_TRANSPORT");
  return t && std::string(t) == "virtiofs";
}

vfs::MountOptions transport_under_test() {
  vfs::MountOptions o;
  o.transport = virtiofs_under_test() ? vfs::FsTransport::Virtiofs : vfs::FsTransport::Serial;
  return o;
}

class VfsVm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = std::make_unique<TempDir>();
    ro_ = std::make_unique<TempDir>();
    hid_ = std::make_unique<TempDir>();
    outside_ = std::make_unique<TempDir>();
    spit(outside_->path() / "secret", "host secret");
    spit(ro_->path() / "file", "read me");
    fs::create_directories(ro_->path() / "dir");
    spit(hid_->path() / ".env", "TOKEN=1");
    spit(hid_->path() / "sub/.env", "TOKEN=2");
    spit(hid_->path() / "secret/key", "k");
    spit(hid_->path() / "visible.txt", "v");
    fs::copy_file(fs::path(GONDOLIN_VFS_TEST_DATA) / "posix_cases.sh", work_->path() / "posix_cases.sh");

    VmOptions o;
    const vfs::MountOptions mo = transport_under_test();
    o.mounts.push_back({"/work", vfs::host_dir(work_->path()), mo});
    o.mounts.push_back({"/ro", vfs::read_only(vfs::host_dir(ro_->path())), mo});
    o.mounts.push_back({"/mem", vfs::memory(), mo});
    o.mounts.push_back({"/hid", vfs::hide(vfs::host_dir(hid_->path()), {"**/.env", "secret"}), mo});
    vm_ = std::make_unique<Vm>(Vm::create(o));
  }
  static void TearDownTestSuite() {
    vm_.reset();
    for (auto* d : {&work_, &ro_, &hid_, &outside_}) d->reset();
  }
  // Runs a bash script in the guest; fails the test (with its output) on a non-zero exit.
  static std::string guest(const std::string& script, int expect_exit = 0) {
    ExecOptions o;
    o.timeout = std::chrono::minutes(10);
    auto r = vm_->exec(Command::argv({"/bin/bash", "-c", "set -e\n" + script}), o);
    EXPECT_EQ(r.exit_code, expect_exit) << "stdout:\n" << r.stdout_data << "\nstderr:\n" << r.stderr_data;
    return r.stdout_data;
  }
  void expect_outside_untouched() {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(outside_->path())) names.insert(e.path().filename());
    EXPECT_EQ(names, std::set<std::string>{"secret"});
    EXPECT_EQ(slurp(outside_->path() / "secret"), "host secret");
  }

  static std::unique_ptr<Vm> vm_;
  static std::unique_ptr<TempDir> work_, ro_, hid_, outside_;
};
std::unique_ptr<Vm> VfsVm::vm_;
std::unique_ptr<TempDir> VfsVm::work_, VfsVm::ro_, VfsVm::hid_, VfsVm::outside_;

TEST_F(VfsVm, PosixCasesOnAHostDirectory) {
  // The script itself runs from the mount.
  std::string out = guest("POSIX_CREATOR_UID=0 POSIX_NO_FIFO=1 sh /work/posix_cases.sh /work");
  EXPECT_EQ(out.find("not ok"), std::string::npos) << out;
  EXPECT_NE(out.find("1..83"), std::string::npos) << out;
}

TEST_F(VfsVm, PosixCasesOnMemory) {
  std::string out = guest("sh /work/posix_cases.sh /mem");
  EXPECT_EQ(out.find("not ok"), std::string::npos) << out;
  EXPECT_NE(out.find("1..83"), std::string::npos) << out;
}

// What a guest may leave in a read-write host directory: no setgid
// directory, no FIFO to hang a host program; a socket node stays inert.
TEST_F(VfsVm, SetgidDirectoriesAndFifosNeverReachTheHost) {
  std::string out = guest(
      "cd /work && mkdir -m 2775 sgid-dir && chmod g+s sgid-dir; stat -c %a sgid-dir; "
      "mkfifo planted-fifo 2>&1 || true; "
      "python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind(\"planted.sock\")'; "
      "test -S planted.sock && echo socket-made");
  EXPECT_NE(out.find("775\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Operation not permitted"), std::string::npos) << out;
  EXPECT_NE(out.find("socket-made"), std::string::npos) << out;
  struct stat st {};
  ASSERT_EQ(::stat((work_->path() / "sgid-dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & S_ISGID, 0u);
  EXPECT_FALSE(fs::exists(work_->path() / "planted-fifo"));
  ASSERT_EQ(::lstat((work_->path() / "planted.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
}

TEST_F(VfsVm, GitCloneIntoTheMountAndStatusIsClean) {
  // A bare repository made on the host, cloned by the guest into the mount.
  TempDir src;
  host_sh("cd " + quote(src.path()) +
          " && git init -q && mkdir -p a/b && for i in $(seq 200); do echo line$i > a/b/f$i.txt; done"
          " && printf '#!/bin/sh\\necho run\\n' > run.sh && chmod 755 run.sh && ln -s a/b/f1.txt link"
          " && head -c 100000 /dev/urandom > blob.bin"
          " && git add -A && git -c user.name=t -c user.email=t@e commit -qm one"
          " && git clone -q --bare . " +
          quote(work_->path() / "origin.git"));
  std::string out = guest(
      "cd /work && git clone -q origin.git clone && cd clone && git status --porcelain && git log --oneline | wc -l"
      " && echo changed >> a/b/f2.txt && git status --porcelain && git checkout -q -- a/b/f2.txt"
      " && git status --porcelain && ./run.sh");
  EXPECT_EQ(out, "1\n M a/b/f2.txt\nrun\n");
  fs::path clone = work_->path() / "clone";
  EXPECT_EQ(slurp(clone / "a/b/f7.txt"), "line7\n");
  EXPECT_EQ(slurp(clone / "blob.bin"), slurp(src.path() / "blob.bin"));
  EXPECT_TRUE(fs::is_symlink(clone / "link"));
  EXPECT_EQ(fs::read_symlink(clone / "link"), "a/b/f1.txt");
  struct stat st {};
  ASSERT_EQ(::stat((clone / "run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(st.st_gid, ::getegid());
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  EXPECT_EQ(host_sh("cd " + quote(clone) + " && git status --porcelain"), "");  // clean on the host too
}

TEST_F(VfsVm, TarRoundTripWithLinksLongUnicodeNamesAndASparseGigabyte) {
  const std::string long_name(250, 'L');
  guest(R"SH(
    rm -rf /tmp/src /tmp/back /work/x && mkdir -p /tmp/src/dir/sub
    echo hello > /tmp/src/dir/file
    ln /tmp/src/dir/file /tmp/src/dir/hardlink
    ln -s file /tmp/src/dir/symlink
    ln -s ../../nowhere /tmp/src/dir/dangling
    echo long > /tmp/src/dir/)SH" +
        long_name + R"SH(
    echo uni > "/tmp/src/dir/ünïcødé-日本-файл"
    truncate -s 1G /tmp/src/sparse
    printf START | dd of=/tmp/src/sparse conv=notrunc status=none
    printf MIDDLE | dd of=/tmp/src/sparse bs=1 seek=536870912 conv=notrunc status=none
    printf END | dd of=/tmp/src/sparse bs=1 seek=1073741821 conv=notrunc status=none
    tar -C /tmp/src -cSf /work/t.tar .
    mkdir /work/x && tar -C /work/x -xSf /work/t.tar
    mkdir /tmp/back && tar -C /work/x -cSf - . | tar -C /tmp/back -xSf -
    diff -r --no-dereference /tmp/src/dir /tmp/back/dir
    [ "$(stat -c %i /work/x/dir/file)" = "$(stat -c %i /work/x/dir/hardlink)" ]
    [ "$(stat -c %s /tmp/back/sparse)" = 1073741824 ]
    [ "$(dd if=/tmp/back/sparse bs=1 skip=536870912 count=6 status=none)" = MIDDLE ]
    [ "$(dd if=/tmp/back/sparse bs=1 skip=1073741821 count=3 status=none)" = END ]
  )SH");
  fs::path x = work_->path() / "x/dir";
  EXPECT_EQ(slurp(x / "file"), "hello\n");
  EXPECT_EQ(fs::hard_link_count(x / "file"), 2u);
  EXPECT_TRUE(fs::equivalent(x / "file", x / "hardlink"));
  EXPECT_EQ(fs::read_symlink(x / "symlink"), "file");
  EXPECT_EQ(fs::read_symlink(x / "dangling"), "../../nowhere");
  EXPECT_EQ(slurp(x / long_name), "long\n");
  EXPECT_EQ(slurp(x / "ünïcødé-日本-файл"), "uni\n");
  fs::path sparse = work_->path() / "x/sparse";
  struct stat st {};
  ASSERT_EQ(::stat(sparse.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1073741824);
  EXPECT_LT(st.st_blocks * 512, 16 << 20);  // the holes stayed holes on the host
  std::ifstream in(sparse, std::ios::binary);
  char buf[6];
  in.seekg(536870912).read(buf, 6);
  EXPECT_EQ(std::string(buf, 6), "MIDDLE");
}

TEST_F(VfsVm, PythonCompileallWritesBytecodeToTheHost) {
  for (int i = 0; i < 20; ++i)
    spit(work_->path() / ("py/pkg/mod" + std::to_string(i) + ".py"), "X = " + std::to_string(i) + "\n");
  spit(work_->path() / "py/pkg/__init__.py", "");
  std::string out =
      guest("python3 -m compileall -q /work/py && cd /work/py && python3 -c 'import pkg.mod7; print(pkg.mod7.X)'");
  EXPECT_EQ(out, "7\n");
  int pyc = 0;
  for (const auto& e : fs::directory_iterator(work_->path() / "py/pkg/__pycache__"))
    pyc += e.path().extension() == ".pyc";
  EXPECT_EQ(pyc, 21);
}

TEST_F(VfsVm, RenameOverUnlinkWhileOpenAndAppendFromTwoProcesses) {
  std::string out = guest(R"SH(
    cd /work && mkdir -p ops && cd ops
    echo new > a && echo old > b && mv a b && cat b
    echo kept > gone && exec 3<gone && rm gone && cat <&3 && exec 3<&-
    exec 4>held && rm held && echo written-after-unlink >&4 && exec 4>&-
    : > log
    for p in A B; do (for i in $(seq 1 300); do echo "$p$i" >> log; done) & done; wait
    wc -l < log; grep -c '^A' log; grep -c '^B' log; grep -cvE '^[AB][0-9]+$' log || true
  )SH");
  EXPECT_EQ(out, "new\nkept\n600\n300\n300\n0\n");
  std::string log = slurp(work_->path() / "ops/log");
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 600);
  EXPECT_FALSE(fs::exists(work_->path() / "ops/gone"));
  EXPECT_FALSE(fs::exists(work_->path() / "ops/a"));
  EXPECT_EQ(slurp(work_->path() / "ops/b"), "new\n");
}

TEST_F(VfsVm, ReadOnlyMountRefusesEveryWrite) {
  std::string out = guest(R"SH(
    cat /ro/file; echo
    cmds=("touch /ro/new" "sh -c 'echo x > /ro/file'" "sh -c 'echo x >> /ro/file'" "rm /ro/file"
          "mkdir /ro/d" "mv /ro/file /ro/f2" "chmod 777 /ro/file" "chown 0 /ro/file" "ln -s x /ro/l"
          "ln /ro/file /ro/h" "truncate -s 0 /ro/file" "rmdir /ro/dir" "touch -d 2000-01-01 /ro/file"
          "mkfifo /ro/fifo" "python3 -c 'import os; os.setxattr(\"/ro/file\", \"user.a\", b\"b\")'")
    for cmd in "${cmds[@]}"; do
      if err=$(eval "$cmd" 2>&1); then echo "ALLOWED: $cmd"; fi
      case "$err" in *"Read-only file system"*) echo erofs ;; *) echo "OTHER: $cmd: $err" ;; esac
    done
  )SH");
  EXPECT_EQ(out.find("ALLOWED"), std::string::npos) << out;
  EXPECT_EQ(out.find("OTHER"), std::string::npos) << out;
  EXPECT_EQ(out.rfind("read me\n", 0), 0u) << out;
  EXPECT_EQ(slurp(ro_->path() / "file"), "read me");
  EXPECT_EQ(std::distance(fs::directory_iterator(ro_->path()), fs::directory_iterator()), 2);
}

TEST_F(VfsVm, HiddenPathsAreAbsentAndCannotBeCreated) {
  std::string out = guest(R"SH(
    ls -A /hid | tr '\n' ' '; echo; ls -A /hid/sub | wc -l
    for cmd in "cat /hid/.env" "cat /hid/sub/.env" "ls /hid/secret" "stat /hid/secret/key"; do
      err=$(eval "$cmd" 2>&1) && echo "VISIBLE: $cmd"
      case "$err" in *"No such file or directory"*) echo enoent ;; *) echo "OTHER: $err" ;; esac
    done
    for cmd in "sh -c 'echo x > /hid/.env'" "mkdir /hid/secret" "mv /hid/visible.txt /hid/sub/.env" "ln -s x /hid/.env"; do
      err=$(eval "$cmd" 2>&1) && echo "CREATED: $cmd"
      case "$err" in *"Permission denied"*) echo eacces ;; *) echo "OTHER: $err" ;; esac
    done
  )SH");
  EXPECT_EQ(out, "sub visible.txt \n0\nenoent\nenoent\nenoent\nenoent\neacces\neacces\neacces\neacces\n");
  EXPECT_EQ(slurp(hid_->path() / ".env"), "TOKEN=1");
  EXPECT_EQ(slurp(hid_->path() / "sub/.env"), "TOKEN=2");
  EXPECT_TRUE(fs::exists(hid_->path() / "visible.txt"));
}

TEST_F(VfsVm, EscapeAttemptsNeverTouchTheHostOutsideTheRoot) {
  std::string shadow_before = slurp("/etc/shadow");
  const std::string outside = outside_->path().string();
  guest(
      "cd /work && mkdir -p esc && cd esc\n"
      "ln -s " +
      outside + "/secret abs && ln -s ../../../../../../../../.." + outside +
      "/secret rel\n"
      "ln -s /etc/shadow shadow && ln -s " +
      outside +
      " dirlink\n"
      "for l in abs rel dirlink/secret; do cat $l 2>/dev/null || true; echo pwned > $l 2>/dev/null || true; done\n"
      "echo pwned >> shadow || true\n"
      "cat /work/../../../../etc/passwd > /dev/null\n"
      "mkdir race\n"
      "(for i in $(seq 200); do mv race race.d; ln -s " +
      outside +
      " race; rm race; mv race.d race; done) &\n"
      "for i in $(seq 400); do echo pwned > race/f$((i % 5)) 2>/dev/null || true; done; wait\n");
  expect_outside_untouched();
  EXPECT_EQ(slurp("/etc/shadow"), shadow_before);
  // The guest's links exist on the host as the links they are.
  EXPECT_EQ(fs::read_symlink(work_->path() / "esc/shadow"), "/etc/shadow");
  EXPECT_TRUE(fs::is_symlink(work_->path() / "esc/abs"));
}

TEST_F(VfsVm, OwnershipStaysInsideTheMapping) {
  spit(work_->path() / "own/f", "x");
  std::string out = guest("cd /work/own && stat -c %u:%g f && chown 0:0 f && (chown 1234 f 2>&1 || true)");
  EXPECT_NE(out.find("0:0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Operation not permitted"), std::string::npos) << out;
  struct stat st {};
  ::stat((work_->path() / "own/f").c_str(), &st);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST_F(VfsVm, ProgramsRunFromTheMountAndTheFileApiSeesIt) {
  spit(work_->path() / "bin/hello.sh", "#!/bin/sh\necho hello from the host\n");
  fs::permissions(work_->path() / "bin/hello.sh", fs::perms::owner_all);
  guest("cp /bin/true /work/bin/true2");
  auto r = vm_->exec(std::vector<std::string>{"/work/bin/hello.sh"});
  EXPECT_EQ(r.stdout_data, "hello from the host\n");
  EXPECT_EQ(vm_->exec(std::vector<std::string>{"/work/bin/true2"}).exit_code, 0);
  EXPECT_EQ(vm_->read_file("/work/bin/hello.sh"), slurp(work_->path() / "bin/hello.sh"));
  vm_->write_file("/work/from-api.txt", "via the agent");
  EXPECT_EQ(slurp(work_->path() / "from-api.txt"), "via the agent");
}

TEST_F(VfsVm, LargeDirectories) {
  std::string out = guest(R"SH(
    mkdir /work/big && python3 -c '
for i in range(5000): open("/work/big/file-%05d" % i, "w").close()'
    ls /work/big | wc -l; ls -f /work/big | wc -l; find /work/big -type f | wc -l
  )SH");
  EXPECT_EQ(out, "5000\n5002\n5000\n");
  EXPECT_EQ(std::distance(fs::directory_iterator(work_->path() / "big"), fs::directory_iterator()), 5000);
  guest("rm -rf /work/big");
  EXPECT_FALSE(fs::exists(work_->path() / "big"));
}

TEST_F(VfsVm, HostSideChangesBecomeVisible) {
  spit(work_->path() / "live.txt", "one");
  EXPECT_EQ(guest("cat /work/live.txt"), "one");
  spit(work_->path() / "live.txt", "two, longer");
  spit(work_->path() / "appeared.txt", "new");
  ::sleep(2);  // the entry and attribute timeouts (1 s)
  EXPECT_EQ(guest("cat /work/live.txt; echo; cat /work/appeared.txt"), "two, longer\nnew");
}

TEST(VfsCli, MountFlagsWorkAndBadOnesAreClear) {
  TempDir dir;
  spit(dir.path() / "in.txt", "from host");
  auto r = gondolin::testing::run_gondolin({"exec", "--mount-hostfs", dir.path().string() + ":/w", "--mount-memfs",
                                            "/m", "--hide", "/w/in.txt", "--", "sh", "-c",
                                            "ls -A /w | wc -l; echo hi > /w/out.txt; echo mem > /m/f; cat /m/f"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "0\nmem\n");
  EXPECT_EQ(slurp(dir.path() / "out.txt"), "hi\n");

  auto ro = gondolin::testing::run_gondolin(
      {"exec", "--mount-hostfs", dir.path().string() + ":/w:ro", "--", "sh", "-c", "cat /w/in.txt; touch /w/x"});
  EXPECT_EQ(ro.out, "from host");
  EXPECT_NE(ro.err.find("Read-only file system"), std::string::npos) << ro.err;
  EXPECT_NE(ro.exit_code, 0);

  // The memory file system of the first run is gone.
  auto again = gondolin::testing::run_gondolin({"exec", "--mount-memfs", "/m", "--", "ls", "-A", "/m"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_EQ(again.out, "");

  auto missing = gondolin::testing::run_gondolin({"exec", "--mount-hostfs", "/nonexistent/dir:/w", "--", "true"});
  EXPECT_EQ(missing.exit_code, 125);
  EXPECT_NE(missing.err.find("/nonexistent/dir does not exist"), std::string::npos) << missing.err;
  auto file = gondolin::testing::run_gondolin(
      {"exec", "--mount-hostfs", (dir.path() / "in.txt").string() + ":/w", "--", "true"});
  EXPECT_EQ(file.exit_code, 125);
  EXPECT_NE(file.err.find("is not a directory"), std::string::npos) << file.err;
  auto root = gondolin::testing::run_gondolin({"exec", "--mount-memfs", "/", "--", "true"});
  EXPECT_EQ(root.exit_code, 125);
  auto hide = gondolin::testing::run_gondolin({"exec", "--hide", "/etc/passwd", "--", "true"});
  EXPECT_EQ(hide.exit_code, 125);
  EXPECT_NE(hide.err.find("--hide"), std::string::npos) << hide.err;
}

// ---- virtio-fs specifics (the whole VfsVm suite also runs over virtio-fs) ----------

// Direct I/O: bulk data bypasses the guest page cache; files still work with
// real tools; MAP_SHARED is refused by Linux 6.1, MAP_PRIVATE works.
TEST(VfsVirtiofs, DirectIoMountWithRealToolsAndHardLinks) {
  TempDir dir;
  spit(dir.path() / "in.txt", "from host\n");
  VmOptions o;
  vfs::MountOptions mo;
  mo.transport = vfs::FsTransport::Virtiofs;
  mo.direct_io = true;
  o.mounts.push_back({"/d", vfs::host_dir(dir.path()), mo});
  Vm vm = Vm::create(o);
  auto r = vm.exec(Command::argv({"/bin/bash", "-c", R"(set -e
    cd /d
    grep -q virtiofs /proc/mounts
    cat in.txt
    dd if=/dev/urandom of=big bs=1M count=8 status=none
    sha256sum big | cut -c1-64 > big.sum
    mv big big2
    sha256sum big2 | cut -c1-64 | cmp - big.sum
    # The old name's link count is right at once (the guest was not told).
    ln big2 link; stat -c %h big2
    git init -q repo && cd repo && echo a > a && git add a && git -c user.name=t -c user.email=t@t commit -qm a
    echo b >> a; git status --porcelain
    python3 -c "
import mmap, os
f = os.open('/d/in.txt', os.O_RDWR)
try:
    mmap.mmap(f, 0, mmap.MAP_SHARED); print('shared mapped')
except OSError as e:
    print('shared refused', e.errno)
m = mmap.mmap(f, 0, mmap.MAP_PRIVATE); print('private', m[:4].decode())
")"}));
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "from host\n2\n M a\nshared refused 19\nprivate from\n");
  EXPECT_EQ(host_sh("cd " + dir.path().string() + " && sha256sum big2 | cut -c1-64 | cmp - big.sum && echo same"),
            "same\n");
}

TEST(VfsVirtiofs, CliTransportFlag) {
  TempDir dir;
  auto r = gondolin::testing::run_gondolin({"exec", "--mount-hostfs", dir.path().string() + ":/w", "--mount-transport",
                                            "virtiofs", "--mount-cache", "direct", "--", "sh", "-c",
                                            "grep -c 'gondolin.fs0 /w virtiofs' /proc/mounts; echo hi > /w/o"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1\n");
  EXPECT_EQ(slurp(dir.path() / "o"), "hi\n");
  auto bad = gondolin::testing::run_gondolin({"exec", "--mount-transport", "9p", "--", "true"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--mount-transport"), std::string::npos) << bad.err;
}

// q35 has PCI: the device is vhost-user-fs-pci there.
TEST(VfsVirtiofs, WorksOnQ35) {
  TempDir dir;
  spit(dir.path() / "in", "from the host");
  auto r = gondolin::testing::run_gondolin({"exec", "--machine", "q35", "--mount-hostfs",
                                            dir.path().string() + ":/w:transport=virtiofs", "--", "sh", "-c",
                                            "cat /w/in; echo; echo back > /w/out"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "from the host\n");
  EXPECT_EQ(slurp(dir.path() / "out"), "back\n");
}

// The guest unbinds and binds the driver (a device reset): the mount can be
// made again and works; files opened before fail instead of reaching
// something else. (Every virtio-fs device is reset: a start from a boot
// template has spare ones, and 6.1 does not say which holds which tag.)
TEST(VfsVirtiofs, DeviceResetStartsANewSession) {
  TempDir dir;
  spit(dir.path() / "old", "old file");
  auto r = gondolin::testing::run_gondolin(
      {"exec", "--mount-hostfs", dir.path().string() + ":/w:transport=virtiofs", "--", "sh", "-c",
       "exec 3</w/old; umount -l /w; drv=/sys/bus/virtio/drivers/virtiofs; "
       "for d in $drv/virtio*; do dev=$(basename $(readlink -f $d)); echo $dev > $drv/unbind; echo $dev > $drv/bind; "
       "done; "
       "mount -t virtiofs gondolin.fs0 /w && cat /w/old && echo; echo new > /w/new; "
       "cat <&3 || echo old descriptor refused"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "old file\nold descriptor refused\n") << r.err;
  EXPECT_EQ(slurp(dir.path() / "new"), "new\n");
}

// Per-mount options: a project at the default transport (virtio-fs, as this
// QEMU can snapshot it) next to a dataset over virtio-serial with direct
// I/O, read-only.
TEST(VfsVirtiofs, PerMountOptionsMixTransports) {
  TempDir project, data;
  spit(data.path() / "big", std::string(3 << 20, 'd'));
  auto r = gondolin::testing::run_gondolin(
      {"exec", "--mount-hostfs", project.path().string() + ":/w", "--mount-hostfs",
       data.path().string() + ":/d:ro,transport=serial,cache=direct", "--", "sh", "-c",
       "awk '$2==\"/w\"||$2==\"/d\"{print $2, $3, substr($4,1,2)}' /proc/mounts; wc -c < /d/big; "
       "cp /d/big /w/copy; echo x > /d/new || echo refused"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "/w virtiofs rw\n/d fuse.gondolin ro\n3145728\nrefused\n");
  EXPECT_EQ(slurp(project.path() / "copy"), std::string(3 << 20, 'd'));
  EXPECT_FALSE(fs::exists(data.path() / "new"));
  auto bad = gondolin::testing::run_gondolin(
      {"exec", "--mount-hostfs", data.path().string() + ":/d:transport=9p", "--", "true"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("invalid --mount-hostfs"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("unknown option 'transport=9p'"), std::string::npos) << bad.err;
}

}  // namespace
