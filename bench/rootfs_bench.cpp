// The guest's writable root (--rootfs-mode): the cow disk against the tmpfs
// overlay (memory) it replaced as the default, in the same run.
//   - boot -> first exec (goal: cow <= 1.05x memory; the host's mkfs.ext4 and
//     the second disk are all it adds);
//   - writing MB to /root with dd and syncing, and reading it back cold;
//   - snapshot pause with that file in the root (the cow disk is copied).
// Usage: gondolin-bench-rootfs [RUNS] [MB]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench_util.h"
#include "gondolin/session.h"
#include "gondolin/vm.h"
#include "util/paths.h"

using namespace gondolin;
using namespace gondolin::bench;

namespace {

struct ModeResult {
  std::vector<double> boot, write, read;
  double snapshot_pause = 0;
  double snapshot_total = 0;
};

double timed_exec(Vm& vm, const std::string& script) {
  auto start = Clock::now();
  auto r = vm.exec(script);
  if (r.exit_code != 0) {
    std::fprintf(stderr, "bench: '%s' failed: %s\n", script.c_str(), r.stderr_data.c_str());
    std::exit(1);
  }
  return seconds_since(start);
}

ModeResult measure(RootfsMode mode, int runs, int mb, const std::filesystem::path& tmp) {
  VmOptions opts;
  opts.memory_mib = 2048;  // the tmpfs (half of RAM) must hold the file too
  opts.register_session = false;
  opts.rootfs_mode = mode;
  opts.cold = true;  // boot to first exec, as the modes were compared before boot templates
  ModeResult m;
  const std::string n = std::to_string(mb);
  for (int i = 0; i < runs; ++i) {
    auto start = Clock::now();
    Vm vm = Vm::create(opts);
    vm.exec(std::vector<std::string>{"true"});
    m.boot.push_back(seconds_since(start));
    m.write.push_back(timed_exec(vm, "dd if=/dev/zero of=/root/f bs=1M count=" + n + " status=none && sync"));
    // Cold: the page cache dropped, so a cow root reads its disk.
    vm.exec(std::string("echo 3 > /proc/sys/vm/drop_caches"));
    m.read.push_back(timed_exec(vm, "cat /root/f > /dev/null"));
    if (i == 0) {
      auto snap_start = Clock::now();
      SnapshotInfo s = vm.snapshot(tmp / to_string(mode));
      m.snapshot_total = seconds_since(snap_start);
      m.snapshot_pause = s.save_seconds;
    }
  }
  return m;
}

void row(const char* what, const std::vector<double>& cow, const std::vector<double>& memory, const char* goal) {
  std::printf("%-26s cow %6.2f s  memory %6.2f s  RATIO cow/memory %5.2fx %s  [cow %s | memory %s]\n", what,
              median(cow), median(memory), median(cow) / median(memory), goal, list(cow).c_str(), list(memory).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int runs = argc > 1 ? std::atoi(argv[1]) : 3;
  int mb = argc > 2 ? std::atoi(argv[2]) : 512;
  auto tmp = paths::make_private_temp_dir("gondolin-bench-rootfs");
  ModeResult memory = measure(RootfsMode::Memory, runs, mb, tmp);
  ModeResult cow = measure(RootfsMode::Cow, runs, mb, tmp);
  row("boot -> first exec", cow.boot, memory.boot, "(goal <= 1.05x)");
  row(("write " + std::to_string(mb) + " MB + sync").c_str(), cow.write, memory.write, "");
  row(("read " + std::to_string(mb) + " MB cold").c_str(), cow.read, memory.read, "");
  std::printf("snapshot with %d MB in /root: cow paused %.2f s, %.2f s in all; memory paused %.2f s, %.2f s in all\n",
              mb, cow.snapshot_pause, cow.snapshot_total, memory.snapshot_pause, memory.snapshot_total);
  std::filesystem::remove_all(tmp);
  return 0;
}
