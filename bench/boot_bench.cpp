// Boot and exec latency, as ratios against baselines measured in the same run:
//
//   start  `gondolin exec -- true` (resumes the image's boot template) and
//          `exec --cold -- true`, whole process, vs each other and the floor
//   cold   `gondolin exec --cold -- true`, whole process, vs the floor: bare QEMU
//          booting the same kernel (same machine and accelerator) with a
//          trivial /init that loads the virtio-serial modules and writes one
//          byte to the port. Median of N runs each.
//   memory RSS and PSS of gondolin + QEMU for idle clones of one template vs
//          an idle cold VM
//   exec   100 x `true` through the API in one running VM, vs `bwrap true`
//          on the host.
//   variants of the floor: what the machine type, the kernel command line and
//          the device set cost.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "bench_util.h"
#include "gondolin/image.h"
#include "gondolin/vm.h"
#include "image/cpio_writer.h"
#include "util/paths.h"
#include "util/subprocess.h"
#include "util/unique_fd.h"
#include "vm/accel.h"
#include "vm/qemu_command.h"

using namespace gondolin;
using namespace gondolin::bench;

namespace {

std::string read_file(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct FloorVariant {
  std::string name;
  std::string machine = "microvm";
  std::string drop;                  // a word removed from the image's kernel command line
  std::string add;                   // words added to it
  bool with_rootfs_and_rng = false;  // gondolin's full device set

  FloorVariant(std::string n, std::string m = "microvm", std::string d = "", std::string a = "", bool full = false)
      : name(std::move(n)), machine(std::move(m)), drop(std::move(d)), add(std::move(a)), with_rootfs_and_rng(full) {}
};

// The image's command line (what gondolin boots with), adjusted by a variant.
std::string floor_cmdline(const Image& img, const FloorVariant& v) {
  std::istringstream words(img.manifest.cmdline);
  std::string out, w;
  while (words >> w)
    if (w != v.drop) out += (out.empty() ? "" : " ") + w;
  return out + v.add;
}

// Seconds from exec of QEMU until the trivial init's byte arrives.
double floor_boot(const Image& img, const std::filesystem::path& initrd, const FloorVariant& v, Accel accel) {
  int sv[2], con[2];
  ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
  ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, con);
  UniqueFd host(sv[0]), guest(sv[1]), con_host(con[0]), con_guest(con[1]);
  vm::QemuLaunch l;
  l.qemu_binary = paths::find_program("qemu-system-x86_64");
  l.accel = accel;
  l.machine = v.machine;
  l.kernel = img.kernel_path();
  l.initrd = initrd;
  l.rootfs = img.rootfs_path();
  l.cmdline = floor_cmdline(img, v);
  l.tsc_khz = vm::host_tsc_khz();
  l.control_fd = guest.get();
  l.console_fd = con_guest.get();
  auto cmd = vm::build_qemu_command(l);
  if (!v.with_rootfs_and_rng) {
    // The smallest device set: drop the disk and the RNG, keep serial + console.
    std::vector<std::string> trimmed;
    for (std::size_t i = 0; i < cmd.argv.size(); ++i) {
      const std::string& a = cmd.argv[i];
      if (a == "-drive" || (a == "-device" && i + 1 < cmd.argv.size() &&
                            (cmd.argv[i + 1].find("virtio-blk") == 0 || cmd.argv[i + 1].find("virtio-rng") == 0))) {
        ++i;
        continue;
      }
      trimmed.push_back(a);
    }
    cmd.argv = trimmed;
  }
  SpawnSpec spec;
  spec.argv = cmd.argv;
  spec.fds = cmd.fds;
  int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  spec.stdout_fd = devnull;
  spec.stderr_fd = devnull;
  auto start = Clock::now();
  pid_t pid = spawn_process(spec);
  guest.reset();
  con_guest.reset();
  // Keep the console flowing: a full console socket would stall the guest.
  std::thread console([fd = con_host.get()] {
    char buf[4096];
    while (::read(fd, buf, sizeof buf) > 0) {}
  });
  char b = 0;
  pollfd p{host.get(), POLLIN, 0};
  ssize_t n = ::poll(&p, 1, 60000) == 1 ? ::read(host.get(), &b, 1) : -1;
  double t = seconds_since(start);
  ::kill(pid, SIGKILL);
  wait_process(pid);
  console.join();
  ::close(devnull);
  return n == 1 ? t : -1;
}

double gondolin_cold(const std::vector<std::string>& extra) {
  std::vector<std::string> argv = {GONDOLIN_BINARY, "exec"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.insert(argv.end(), {"--", "true"});
  return timed_run(std::move(argv));
}

// An idle VM: `gondolin exec ARGS -- sh -c 'echo up; sleep 600'`, running
// until killed. Its memory is read once the guest said "up" and sat idle.
struct IdleVm {
  pid_t pid = -1;
  UniqueFd out;
};

IdleVm start_idle(const std::vector<std::string>& extra) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return {};
  UniqueFd read_end(p[0]), write_end(p[1]);
  SpawnSpec spec;
  spec.argv = {GONDOLIN_BINARY, "exec"};
  spec.argv.insert(spec.argv.end(), extra.begin(), extra.end());
  spec.argv.insert(spec.argv.end(), {"--", "sh", "-c", "echo up; sleep 600"});
  spec.stdout_fd = write_end.get();
  IdleVm vm{spawn_process(spec), std::move(read_end)};
  char buf[8];
  pollfd pf{vm.out.get(), POLLIN, 0};
  if (::poll(&pf, 1, 120000) != 1 || ::read(vm.out.get(), buf, sizeof buf) <= 0) vm.pid = -1;
  return vm;
}

// "VmRSS" or "Pss" of one process, in KiB (smaps_rollup for Pss).
long kib(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + (field == "Pss" ? "/smaps_rollup" : "/status"));
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
  return 0;
}

// RSS and PSS of gondolin plus its QEMU (a child of its io thread), in MiB.
std::pair<double, double> vm_memory(pid_t gondolin) {
  long rss = kib(gondolin, "VmRSS"), pss = kib(gondolin, "Pss");
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(gondolin) + "/task", ec)) {
    std::ifstream children(task.path() / "children");
    for (pid_t child; children >> child;) {
      rss += kib(child, "VmRSS");
      pss += kib(child, "Pss");
    }
  }
  return {static_cast<double>(rss) / 1024.0, static_cast<double>(pss) / 1024.0};
}

void stop_idle(IdleVm& vm) {
  if (vm.pid <= 0) return;
  ::kill(vm.pid, SIGTERM);
  wait_process(vm.pid);
}

// Host memory of N idle clones of one template against one cold VM, both
// started with `extra`.
void clone_memory(int clones, const std::vector<std::string>& extra, const std::string& what) {
  std::vector<std::string> cold_args = extra;
  cold_args.push_back("--cold");
  IdleVm cold = start_idle(cold_args);
  std::vector<IdleVm> vms;
  for (int i = 0; i < clones; ++i) vms.push_back(start_idle(extra));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  auto [cold_rss, cold_pss] = vm_memory(cold.pid);
  std::printf("%s\n", what.c_str());
  std::printf("idle cold VM            RSS %6.1f MiB   PSS %6.1f MiB\n", cold_rss, cold_pss);
  double worst_rss = 0, worst_pss = 0;
  for (int i = 0; i < clones; ++i) {
    auto [rss, pss] = vm_memory(vms[static_cast<std::size_t>(i)].pid);
    std::printf("idle clone %d            RSS %6.1f MiB   PSS %6.1f MiB\n", i + 1, rss, pss);
    if (i > 0) worst_rss = std::max(worst_rss, rss), worst_pss = std::max(worst_pss, pss);
  }
  std::printf("RATIO clone 2..%d / cold  RSS %5.2fx   PSS %5.2fx  (goal <= 0.50x)\n\n", clones, worst_rss / cold_rss,
              worst_pss / cold_pss);
  stop_idle(cold);
  for (auto& vm : vms) stop_idle(vm);
}

// Starts with a host directory mount: from the template with mount slots
// (virtio-fs: the start's own RAM copy; serial: copy-on-write) against cold.
void mount_starts(int runs, const std::string& dir) {
  for (const char* transport : {"virtiofs", "serial"}) {
    const std::vector<std::string> mount{"--mount-hostfs", dir + ":/w:transport=" + transport};
    std::vector<std::string> cold_args = mount;
    cold_args.push_back("--cold");
    gondolin_cold(mount);  // makes this layout's template if there is none
    std::vector<double> templated, cold;
    for (int i = 0; i < runs; ++i) {
      cold.push_back(gondolin_cold(cold_args));
      templated.push_back(gondolin_cold(mount));
    }
    std::printf("exec, %-8s mount   %6.2f s   [%s]  (template)\n", transport, median(templated),
                list(templated).c_str());
    std::printf("exec, %-8s --cold  %6.2f s   [%s]\n", transport, median(cold), list(cold).c_str());
    std::printf("RATIO template/cold   %6.2fx\n\n", median(templated) / median(cold));
  }
}

// Exec round trip in a running VM vs a host sandbox.
void exec_round_trip() {
  Vm vm = Vm::create({});
  vm.exec(std::vector<std::string>{"true"});  // warm
  auto start = Clock::now();
  for (int i = 0; i < 100; ++i) vm.exec(std::vector<std::string>{"true"});
  double per_exec = seconds_since(start) / 100;
  vm.close();
  double per_bwrap = -1;
  if (!paths::find_program("bwrap").empty()) {
    auto bstart = Clock::now();
    SpawnSpec bwrap;
    bwrap.argv = {"bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all", "true"};
    for (int i = 0; i < 100; ++i) wait_process(spawn_process(bwrap));
    per_bwrap = seconds_since(bstart) / 100;
  }
  std::printf("exec round trip       %6.2f ms per `true` (100 in one VM)\n", per_exec * 1000);
  if (per_bwrap > 0) {
    std::printf("bwrap true (host)     %6.2f ms\n", per_bwrap * 1000);
    std::printf("RATIO exec/bwrap      %6.2fx\n", per_exec / per_bwrap);
  } else {
    std::printf("bwrap not installed (apt-get install bubblewrap) - no baseline\n");
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  Image img = ImageStore::default_store().resolve("");
  Accel accel = vm::choose_accel(Accel::Auto).accel;
  std::printf("image %s, accelerator %s, %d runs each (medians; all runs in seconds)\n\n", img.display_name().c_str(),
              to_string(accel), runs);

  // The floor's initramfs: the image's own (modules) with /init replaced.
  auto tmp = paths::make_private_temp_dir("gondolin-bench");
  std::filesystem::path initrd = tmp / "floor.cpio";
  {
    CpioWriter w;
    w.add_file("init", read_file(FLOOR_INIT_BINARY), 0755);
    std::ofstream out(initrd, std::ios::binary);
    out << read_file(img.initramfs_path().string()) << w.finish();
  }

  gondolin_cold({});  // makes the default shape's boot template if there is none
  std::vector<double> floor, cold, templated;
  for (int i = 0; i < runs; ++i) {
    floor.push_back(floor_boot(img, initrd, FloorVariant{"floor"}, accel));
    cold.push_back(gondolin_cold({"--cold"}));
    templated.push_back(gondolin_cold({}));
  }
  double f = median(floor), c = median(cold), tm = median(templated);
  std::printf("exec -- true          %6.2f s   [%s]  (resumes the boot template)\n", tm, list(templated).c_str());
  std::printf("exec --cold -- true   %6.2f s   [%s]\n", c, list(cold).c_str());
  std::printf("floor (bare QEMU)     %6.2f s   [%s]\n", f, list(floor).c_str());
  std::printf("RATIO template/cold   %6.2fx  (goal <= 0.20x)\n", tm / c);
  std::printf("RATIO template/floor  %6.2fx  (goal <= 0.25x)\n", tm / f);
  std::printf("RATIO cold/floor      %6.2fx  (goal <= 1.10x)\n\n", c / f);
  clone_memory(4, {}, "no mounts (clones map the template's RAM copy-on-write):");
  std::filesystem::create_directories(tmp / "mount");
  mount_starts(runs, (tmp / "mount").string());
  clone_memory(4, {"--mount-hostfs", (tmp / "mount").string() + ":/w"},
               "a virtio-fs mount (each clone has its own copy of the template's RAM):");

  // What the knobs buy, measured on the floor so only the knob differs.
  std::vector<FloorVariant> variants{
      {"q35 instead of microvm", "q35"},
      {"without 'quiet'", "microvm", "quiet"},
      {"without 'cryptomgr.notests'", "microvm", "cryptomgr.notests"},
      {"gondolin's device set (disk, rng)", "microvm", "", "", true},
      {"+ 8250.nr_uarts=1 no_timer_check", "microvm", "", " 8250.nr_uarts=1 no_timer_check"},
      {"+ mitigations=off", "microvm", "", " mitigations=off"},
  };
  for (const auto& v : variants) {
    std::vector<double> t;
    for (int i = 0; i < runs; ++i) t.push_back(floor_boot(img, initrd, v, accel));
    std::printf("floor %-36s %6.2f s  (%+.2f s vs floor)  [%s]\n", v.name.c_str(), median(t), median(t) - f,
                list(t).c_str());
  }
  std::vector<double> q35;
  for (int i = 0; i < runs; ++i) q35.push_back(gondolin_cold({"--cold", "--machine", "q35"}));
  std::printf("cold exec on q35      %6.2f s   (%+.2f s vs microvm)\n\n", median(q35), median(q35) - c);

  exec_round_trip();
  std::filesystem::remove_all(tmp);
  return 0;
}
