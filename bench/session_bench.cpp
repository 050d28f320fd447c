// Snapshots: resume-to-first-exec against cold boot-to-first-exec of the same
// image (goal <= 0.15x), and the cost of writing a snapshot of an idle guest
// (pause time and file size against its RAM).
#include <cstdio>
#include <cstdlib>

#include "bench_util.h"
#include "gondolin/vm.h"
#include "util/paths.h"

using namespace gondolin;
using namespace gondolin::bench;

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  VmOptions opts;
  opts.memory_mib = 512;
  opts.register_session = false;
  auto tmp = paths::make_private_temp_dir("gondolin-bench-snap");

  std::vector<double> cold, resume, save;
  std::uint64_t bytes = 0;
  for (int i = 0; i < runs; ++i) {
    auto start = Clock::now();
    Vm vm = Vm::create(opts);
    vm.exec(std::vector<std::string>{"true"});
    cold.push_back(seconds_since(start));
    if (i == 0) {
      SnapshotInfo s = vm.snapshot(tmp / "snap");
      save.push_back(s.save_seconds);
      bytes = s.state_bytes;
    }
  }
  for (int i = 0; i < runs; ++i) {
    auto start = Clock::now();
    Vm vm = Vm::resume((tmp / "snap").string(), opts);
    vm.exec(std::vector<std::string>{"true"});
    resume.push_back(seconds_since(start));
  }
  double c = median(cold), r = median(resume);
  std::printf("cold boot -> first exec   %6.2f s  [%s]\n", c, list(cold).c_str());
  std::printf("resume    -> first exec   %6.2f s  [%s]\n", r, list(resume).c_str());
  std::printf("RATIO resume/cold         %6.2fx  (goal <= 0.15x)\n", r / c);
  std::printf("snapshot of an idle %u MiB guest: paused %.2f s, %.1f MiB on disk (%.1f%% of RAM)\n", opts.memory_mib,
              save.front(), static_cast<double>(bytes) / (1 << 20),
              100.0 * static_cast<double>(bytes) / (static_cast<double>(opts.memory_mib) * (1 << 20)));
  std::filesystem::remove_all(tmp);
  return 0;
}
