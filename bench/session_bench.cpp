// Snapshots: resume-to-first-exec against cold boot-to-first-exec of the same
// image (goal <= 0.15x), and the cost of writing a snapshot of an idle guest
// (pause time and file size against its RAM). Measured twice: without
// mounts, and with a host directory mounted at the default transport
// (virtio-fs where QEMU can snapshot it), whose FUSE session travels in the
// snapshot.
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "bench_util.h"
#include "gondolin/session.h"
#include "gondolin/vm.h"
#include "util/paths.h"

using namespace gondolin;
using namespace gondolin::bench;

namespace {

void measure(const char* label, const VmOptions& opts, int runs, const std::filesystem::path& tmp) {
  std::vector<double> cold, resume, save;
  std::uint64_t bytes = 0;
  std::string transport;
  const std::filesystem::path snap = tmp / (std::string("snap-") + label);
  for (int i = 0; i < runs; ++i) {
    auto start = Clock::now();
    Vm vm = Vm::create(opts);
    vm.exec(std::vector<std::string>{"true"});
    cold.push_back(seconds_since(start));
    if (i == 0) {
      // A mount in use: the guest knows a file there when the snapshot is taken.
      if (!opts.mounts.empty())
        transport = vm.exec(std::string("cat /work/file >/dev/null; awk '$2 == \"/work\" {printf \"%s\", $3}' "
                                        "/proc/mounts"))
                        .stdout_data;
      SnapshotInfo s = vm.snapshot(snap);
      save.push_back(s.save_seconds);
      bytes = s.state_bytes;
    }
  }
  for (int i = 0; i < runs; ++i) {
    auto start = Clock::now();
    Vm vm = Vm::resume(snap.string(), {});
    vm.exec(std::vector<std::string>{opts.mounts.empty() ? "true" : "test", "-s", "/work/file"});
    resume.push_back(seconds_since(start));
  }
  double c = median(cold), r = median(resume);
  std::printf("[%s%s%s]\n", label, transport.empty() ? "" : "; guest file system type: ", transport.c_str());
  std::printf("cold boot -> first exec   %6.2f s  [%s]\n", c, list(cold).c_str());
  std::printf("resume    -> first exec   %6.2f s  [%s]\n", r, list(resume).c_str());
  std::printf("RATIO resume/cold         %6.2fx  (goal <= 0.15x)\n", r / c);
  std::printf("snapshot of an idle %u MiB guest: paused %.2f s, %.1f MiB on disk (%.1f%% of RAM)\n", opts.memory_mib,
              save.front(), static_cast<double>(bytes) / (1 << 20),
              100.0 * static_cast<double>(bytes) / (static_cast<double>(opts.memory_mib) * (1 << 20)));
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  VmOptions opts;
  opts.memory_mib = 512;
  opts.register_session = false;
  opts.cold = true;  // the baseline is a kernel boot, not a boot template
  auto tmp = paths::make_private_temp_dir("gondolin-bench-snap");
  measure("no mounts", opts, runs, tmp);

  std::filesystem::create_directories(tmp / "host");
  std::ofstream(tmp / "host" / "file") << "bench\n";
  opts.mounts.push_back({"/work", vfs::host_dir(tmp / "host")});  // default transport
  measure("a host directory mounted", opts, runs, tmp);
  std::filesystem::remove_all(tmp);
  return 0;
}
