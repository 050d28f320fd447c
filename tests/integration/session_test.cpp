// Sessions: list, attach, snapshot and resume, as users and scripts see them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "gondolin/error.h"
#include "gondolin/session.h"
#include "gondolin/vm.h"
#include "session/session_registry.h"
#include "test_support.h"
#include "util/subprocess.h"

using namespace gondolin;
using namespace gondolin::testing;
namespace fs = std::filesystem;

namespace {

// A `gondolin exec` owner process running `script`, and its session.
struct Owner {
  pid_t pid = -1;
  std::string session;

  explicit Owner(const std::string& script) {
    SpawnSpec spec;
    spec.argv = {gondolin_binary().string(), "exec", "--", "sh", "-c", script};
    int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    spec.stdout_fd = devnull;
    pid = spawn_process(spec);
    ::close(devnull);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (session.empty() && std::chrono::steady_clock::now() < deadline) {
      for (const auto& s : Session::list())
        if (s.pid == pid) session = s.id;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~Owner() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      wait_process(pid);
    }
  }
};

bool listed(const std::string& id) {
  for (const auto& s : Session::list())
    if (s.id == id) return true;
  return false;
}

}  // namespace

TEST(Sessions, ListShowsARunningVmAndForgetsAKilledOne) {
  Owner owner("sleep 600");
  ASSERT_FALSE(owner.session.empty()) << "the owner never registered";
  auto r = run_gondolin({"list", "--json"});
  ASSERT_EQ(r.exit_code, 0);
  auto arr = nlohmann::json::parse(r.out);
  bool found = false;
  for (const auto& s : arr)
    if (s["id"] == owner.session) {
      found = true;
      EXPECT_EQ(s["pid"], owner.pid);
      EXPECT_EQ(s["command"], "sh -c sleep 600");
      EXPECT_EQ(s["state"], "running");
    }
  EXPECT_TRUE(found) << r.out;
  auto table = run_gondolin({"list"});
  EXPECT_NE(table.out.find(owner.session.substr(0, 12)), std::string::npos);

  fs::path json = fs::path(Session::find(owner.session).socket_path).replace_extension(".json");
  ::kill(owner.pid, SIGKILL);
  wait_process(owner.pid);
  owner.pid = -1;
  EXPECT_FALSE(listed(owner.session));
  EXPECT_FALSE(fs::exists(json)) << "the dead session's entry was not pruned";
}

TEST(Sessions, AttachRunsInTheSameVm) {
  Owner owner("echo from-owner > /tmp/shared; sleep 600");
  ASSERT_FALSE(owner.session.empty());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto r = run_gondolin({"attach", owner.session.substr(0, 8), "--", "sh", "-c", "cat /tmp/shared; exit 3"});
  EXPECT_EQ(r.out, "from-owner\n");
  EXPECT_EQ(r.exit_code, 3);
  // Attaching did not disturb the owner's command.
  EXPECT_TRUE(listed(owner.session));
  auto second = run_gondolin({"attach", owner.session, "--", "pgrep", "-x", "sleep"});
  EXPECT_EQ(second.exit_code, 0);
}

TEST(Sessions, AnAttachedCommandThatIgnoresSighupDoesNotHoldTheOwnerOpen) {
  // The owner's own command ends after a few seconds; an attached one that
  // ignores SIGHUP (what the owner sends when an attach ends) must not keep
  // the owner from exiting.
  Owner owner("sleep 6");
  ASSERT_FALSE(owner.session.empty());
  AttachedProcess attached = Session::attach(Session::find(owner.session),
                                             Command::argv({"sh", "-c", "trap '' HUP; echo started; sleep 1000"}), {});
  auto first = attached.read();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->data, "started\n");
  // The owner's command ends ~6 s after its start; give it 30.
  int status = -1;
  for (int i = 0; i < 300 && ::waitpid(owner.pid, &status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(status != -1) << "the owner hung in close()";  // ~Owner kills it
  owner.pid = -1;
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_THROW(
      {
        while (attached.read()) {}
      },
      Error);
}

TEST(Sessions, AttachErrors) {
  auto none = run_gondolin({"attach", "ffffffffffff", "--", "true"});
  EXPECT_EQ(none.exit_code, 125);
  EXPECT_NE(none.err.find("no running session 'ffffffffffff'"), std::string::npos) << none.err;
  Owner a("sleep 600"), b("sleep 600");
  ASSERT_FALSE(a.session.empty());
  ASSERT_FALSE(b.session.empty());
  // The empty prefix is refused outright; a one-character prefix shared by
  // both (if it is) lists the candidates.
  std::string common;
  for (std::size_t i = 0; i < a.session.size() && a.session[i] == b.session[i]; ++i) common += a.session[i];
  if (!common.empty()) {
    auto amb = run_gondolin({"attach", common, "--", "true"});
    EXPECT_EQ(amb.exit_code, 125);
    EXPECT_NE(amb.err.find("ambiguous"), std::string::npos);
    EXPECT_NE(amb.err.find(a.session.substr(0, 12)), std::string::npos);
  }
}

TEST(Sessions, OtherUsersCannotConnect) {
  Owner owner("sleep 600");
  ASSERT_FALSE(owner.session.empty());
  fs::path sock = Session::find(owner.session).socket_path;
  EXPECT_EQ(fs::status(sock.parent_path()).permissions() & fs::perms::all, fs::perms::owner_all);
  EXPECT_EQ(fs::status(sock).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  if (::getuid() != 0) GTEST_SKIP() << "needs root to become another user";
  pid_t child = ::fork();
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock.c_str(), sizeof addr.sun_path - 1);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::_exit(rc == 0 ? 0 : (errno == EACCES ? 1 : 3));
  }
  int status = wait_process(child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << "another user could connect (0) or failed oddly (3)";
}

TEST(Snapshots, ResumeKeepsProcessesAndTmpfs) {
  TempDir tmp;
  std::string pid, machine_id, mac;
  SnapshotInfo snap;
  {
    Vm vm = Vm::create({});
    pid = vm.exec(std::string("sleep 1000 >/dev/null 2>&1 & echo $!")).stdout_data;
    pid.erase(pid.find_last_not_of('\n') + 1);
    machine_id = vm.read_file("/etc/machine-id");
    mac = vm.read_file("/sys/class/net/eth0/address");
    // /tmp is memory; /root and /var are on the VM's root disk (--rootfs-mode cow).
    vm.exec(std::string("echo kept > /tmp/tmpfs-file; echo overlay > /root/overlay-file; echo var > /var/var-file"));
    snap = vm.snapshot(tmp.path() / "snap");
    EXPECT_FALSE(vm.running());
    EXPECT_THROW(vm.exec(std::string("true")), Error);
  }
  EXPECT_EQ(snap.dir, tmp.path() / "snap");
  EXPECT_GT(snap.state_bytes, 0u);
  Vm resumed = Vm::resume(snap.dir.string(), {});
  auto r = resumed.exec(std::string("kill -0 " + pid + " && cat /proc/" + pid +
                                    "/cmdline | tr '\\0' ' '; cat /tmp/tmpfs-file /root/overlay-file /var/var-file"));
  EXPECT_EQ(r.exit_code, 0) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "sleep 1000 kept\noverlay\nvar\n");
  EXPECT_EQ(resumed.read_file("/etc/machine-id"), machine_id) << "a resumed session is the same machine";
  EXPECT_EQ(machine_id.size(), 33u) << machine_id;
  // Its NIC too: the guest keeps its MAC, and the new stack talks to it.
  EXPECT_EQ(resumed.read_file("/sys/class/net/eth0/address"), mac);
  EXPECT_EQ(resumed.exec(std::string("ping -c1 -W5 10.0.2.2 >/dev/null && echo reached")).stdout_data, "reached\n");
  // The clock was corrected on resume.
  long guest = std::stol(resumed.exec(std::vector<std::string>{"date", "+%s"}).stdout_data);
  EXPECT_LT(std::labs(guest - static_cast<long>(std::time(nullptr))), 30);
}

TEST(Snapshots, TwoResumesAreIndependent) {
  TempDir tmp;
  {
    Vm vm = Vm::create({});
    vm.exec(std::string("echo base > /tmp/common; echo disk > /root/common"));
    vm.snapshot(tmp.path() / "snap");
  }
  Vm a = Vm::resume((tmp.path() / "snap").string(), {});
  Vm b = Vm::resume((tmp.path() / "snap").string(), {});
  // Memory and the root disk alike: each resume has its own.
  a.exec(std::string("echo a > /tmp/only-a; echo a >> /root/common; echo a > /root/only-a; sync"));
  b.exec(std::string("echo b > /tmp/only-b"));
  EXPECT_EQ(a.exec(std::string("cat /tmp/common; ls /tmp/only-b 2>&1 || true")).stdout_data,
            "base\nls: cannot access '/tmp/only-b': No such file or directory\n");
  EXPECT_EQ(b.exec(std::string("test -e /tmp/only-a && echo leaked || echo separate")).stdout_data, "separate\n");
  EXPECT_EQ(b.exec(std::string("cat /root/common; ls /root/only-a 2>&1 || true")).stdout_data,
            "disk\nls: cannot access '/root/only-a': No such file or directory\n");
  // Fresh randomness in each.
  auto ra = a.exec(std::string("head -c 16 /dev/urandom | od -An -tx1")).stdout_data;
  auto rb = b.exec(std::string("head -c 16 /dev/urandom | od -An -tx1")).stdout_data;
  EXPECT_NE(ra, rb);
  EXPECT_NE(a.session_id(), b.session_id());
}

TEST(Snapshots, CliSnapshotOfARunningSession) {
  Owner owner("echo cli > /tmp/cli-file; sleep 600");
  ASSERT_FALSE(owner.session.empty());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto snap = run_gondolin({"snapshot", owner.session.substr(0, 10)});
  ASSERT_EQ(snap.exit_code, 0) << snap.err;
  std::string id = snap.out.substr(0, snap.out.find('\n'));
  EXPECT_EQ(id.size(), 16u);
  // The owner ends, telling its user where the session went.
  int status = wait_process(owner.pid);
  owner.pid = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 125);
  EXPECT_FALSE(listed(owner.session));
  auto ls = run_gondolin({"snapshot", "ls"});
  EXPECT_NE(ls.out.find(id), std::string::npos);
  auto resumed = run_gondolin({"exec", "--resume", id, "--", "cat", "/tmp/cli-file"});
  EXPECT_EQ(resumed.out, "cli\n");
  EXPECT_EQ(run_gondolin({"snapshot", "rm", id}).exit_code, 0);
  EXPECT_EQ(run_gondolin({"exec", "--resume", id, "--", "true"}).exit_code, 125);
}

// `snapshot --keep-running`: the owner's session carries on (attach still
// reaches it), and the snapshot resumes as a copy of it.
TEST(Snapshots, CliKeepRunningForksTheSession) {
  Owner owner("echo cli > /tmp/cli-file; sleep 600");
  ASSERT_FALSE(owner.session.empty());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto snap = run_gondolin({"snapshot", owner.session.substr(0, 10), "--keep-running"});
  ASSERT_EQ(snap.exit_code, 0) << snap.err;
  EXPECT_NE(snap.err.find("keeps running"), std::string::npos) << snap.err;
  std::string id = snap.out.substr(0, snap.out.find('\n'));
  EXPECT_TRUE(process_alive(owner.pid));
  EXPECT_TRUE(listed(owner.session));
  auto attached =
      run_gondolin({"attach", owner.session, "--", "sh", "-c", "echo more >> /tmp/cli-file; cat /tmp/cli-file"});
  EXPECT_EQ(attached.exit_code, 0) << attached.err;
  EXPECT_EQ(attached.out, "cli\nmore\n");
  auto resumed = run_gondolin({"exec", "--resume", id, "--", "cat", "/tmp/cli-file"});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(resumed.out, "cli\n");
  EXPECT_EQ(run_gondolin({"snapshot", "rm", id}).exit_code, 0);
}

// The snapshot holds the guest's whole RAM (keys, tokens, file contents):
// every file in it is the owner's alone, whatever the umask.
TEST(Snapshots, FilesAreTheOwnersAloneWhateverTheUmask) {
  TempDir tmp;
  const mode_t old_umask = ::umask(0);
  Owner owner("echo secret > /tmp/s; sleep 600");
  ::umask(old_umask);
  ASSERT_FALSE(owner.session.empty());
  struct stat st {};
  ASSERT_EQ(::stat((session::sessions_dir() / (owner.session + ".json")).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the session record";
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const fs::path dir = tmp.path() / "snap";
  auto snap = run_gondolin({"snapshot", owner.session, "-o", dir.string()});
  ASSERT_EQ(snap.exit_code, 0) << snap.err;
  wait_process(owner.pid);
  owner.pid = -1;
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0077, 0u) << e.path() << " is readable by others: " << std::oct << (st.st_mode & 0777);
    ++files;
  }
  EXPECT_GE(files, 2);  // manifest.json and the memory image at least
}

TEST(Snapshots, DamagedSnapshotsAreRefusedClearly) {
  TempDir tmp;
  fs::path dir = tmp.path() / "snap";
  {
    Vm vm = Vm::create({});
    vm.snapshot(dir);
  }
  auto copy = [&](const std::string& name) {
    fs::path c = tmp.path() / name;
    host_sh("cp -a --sparse=always " + dir.string() + " " + c.string());  // the root disk stays sparse
    return c;
  };
  fs::path truncated = copy("truncated");
  fs::resize_file(truncated / "state.zst", fs::file_size(truncated / "state.zst") / 2);
  auto r = run_gondolin({"exec", "--resume", truncated.string(), "--", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_NE(r.err.find("truncated or damaged"), std::string::npos) << r.err;

  fs::path corrupt = copy("corrupt");
  {
    std::fstream f(corrupt / "state.zst", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.write("garbage!", 8);
  }
  r = run_gondolin({"exec", "--resume", corrupt.string(), "--", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_NE(r.err.find("sha256 does not match"), std::string::npos) << r.err;

  fs::path other_image = copy("other-image");
  {
    std::ifstream in(other_image / "manifest.json");
    auto doc = nlohmann::json::parse(in);
    doc["image"]["id"] = "0000000000000000";
    std::ofstream(other_image / "manifest.json", std::ios::trunc) << doc.dump();
  }
  r = run_gondolin({"exec", "--resume", other_image.string(), "--", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_NE(r.err.find("needs image"), std::string::npos) << r.err;

  fs::path bad_mac = copy("bad-mac");
  {
    std::ifstream in(bad_mac / "manifest.json");
    auto doc = nlohmann::json::parse(in);
    EXPECT_EQ(doc["network"]["guest_mac"].get<std::string>().rfind("52:54:00:", 0), 0u) << doc.dump();
    doc["network"]["guest_mac"] = "ff:ff:ff:ff:ff:ff";
    std::ofstream(bad_mac / "manifest.json", std::ios::trunc) << doc.dump();
  }
  r = run_gondolin({"exec", "--resume", bad_mac.string(), "--", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_NE(r.err.find("guest_mac must be"), std::string::npos) << r.err;

  fs::path other_qemu = copy("other-qemu");
  {
    std::ifstream in(other_qemu / "manifest.json");
    auto doc = nlohmann::json::parse(in);
    doc["qemu_version"] = "QEMU emulator version 1.0";
    std::ofstream(other_qemu / "manifest.json", std::ios::trunc) << doc.dump();
  }
  r = run_gondolin({"exec", "--resume", other_qemu.string(), "--", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_NE(r.err.find("QEMU emulator version 1.0"), std::string::npos) << r.err;

  fs::path newer_devices = copy("newer-devices");
  {
    std::ifstream in(newer_devices / "manifest.json");
    auto doc = nlohmann::json::parse(in);
    EXPECT_EQ(doc["vm"]["device_layout"], 3) << doc.dump();
    doc["vm"]["device_layout"] = 99;
    std::ofstream(newer_devices / "manifest.json", std::ios::trunc) << doc.dump();
  }
  r = run_gondolin({"exec", "--resume", newer_devices.string(), "--", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_NE(r.err.find("has device layout 99, newer than this gondolin's 3"), std::string::npos) << r.err;

  fs::path no_manifest = copy("no-manifest");
  fs::remove(no_manifest / "manifest.json");
  r = run_gondolin({"exec", "--resume", no_manifest.string(), "--", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_NE(r.err.find("manifest.json"), std::string::npos) << r.err;

  fs::path no_disk = copy("no-disk");
  fs::remove(no_disk / "rootfs-rw.img");
  r = run_gondolin({"exec", "--resume", no_disk.string(), "--", "true"});
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_NE(r.err.find("root disk rootfs-rw.img is missing"), std::string::npos) << r.err;

  // And none of this touched the good snapshot.
  Vm ok = Vm::resume(dir.string(), {});
  EXPECT_EQ(ok.exec(std::string("echo fine")).stdout_data, "fine\n");
}

TEST(Snapshots, SecretPlaceholdersSurviveResumeAndValuesNeverLand) {
  TempDir tmp;
  VmOptions o;
  o.network.secrets = {HostSecret{"API_TOKEN", {"api.example.com"}, "the-real-value-1234", {}, {}, {}, {}}};
  std::string before;
  {
    Vm vm = Vm::create(o);
    before = vm.exec(std::string("printf %s \"$API_TOKEN\"")).stdout_data;
    vm.snapshot(tmp.path() / "snap");
  }
  EXPECT_EQ(before.rfind("GONDOLIN_SECRET_", 0), 0u) << before;
  // Neither the manifest nor the guest's memory (decompressed) holds the value;
  // the placeholder is in memory, which shows the search works.
  std::ifstream in(tmp.path() / "snap" / "manifest.json");
  std::string manifest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(manifest.find("the-real-value-1234"), std::string::npos);
  std::string state = (tmp.path() / "snap" / "state.zst").string();
  EXPECT_EQ(host_sh("zstd -q -dc '" + state + "' | grep -c -a the-real-value-1234 || true"), "0\n");
  EXPECT_NE(host_sh("zstd -q -dc '" + state + "' | grep -c -a " + before + " || true"), "0\n");
  Vm resumed = Vm::resume((tmp.path() / "snap").string(), o);
  EXPECT_EQ(resumed.exec(std::string("printf %s \"$API_TOKEN\"")).stdout_data, before);
}
