// Guest kernels compared (issue 14, point 4): the default image's kernel
// (Debian 12's 6.1 cloud kernel) against another image's, by default
// debian-base-6.12 (the same guest on Debian 12's 6.12 cloud kernel; build
// it first: `gondolin build images/debian-base-6.12.json`). In one run:
//
//   boot   cold `gondolin exec --cold --image IMG -- true`, RUNS each,
//          alternating which image goes first
//   bulk   in one VM per image with a virtio-fs host mount (the default
//          transport): `dd` of MB to a new file with fsync, then, from cold
//          guest caches, `dd` of it back to /dev/null
//   mmap   MAP_SHARED on a file of a `--mount-cache direct` mount: written
//          through the mapping, read back on the host (Linux 6.6+ has
//          FUSE_DIRECT_IO_ALLOW_MMAP; before, mmap of such a file fails)
//
// Ratios are the other kernel against the default's: boot time (the default
// image would switch at <= 1.05x, see docs/images.md), throughput.
//
// Usage: gondolin-bench-kernel [RUNS] [MB] [IMAGE] [BASELINE_IMAGE]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "bench_util.h"
#include "gondolin/error.h"
#include "gondolin/vm.h"
#include "util/paths.h"

using namespace gondolin;
using namespace gondolin::bench;
namespace fs = std::filesystem;

namespace {

double cold_exec(const std::string& image) {
  double t = timed_run({GONDOLIN_BINARY, "exec", "--cold", "--image", image, "--", "true"});
  if (t < 0) throw Error(ErrorKind::Internal, "exec failed on " + image);
  return t;
}

struct MountNumbers {
  std::string kernel;
  double write_mb_s = 0, read_mb_s = 0;
  std::string mmap_result;
};

// Seconds the guest reports for `script` (its last output line).
double guest_seconds(Vm& vm, const std::string& script) {
  ExecResult r = vm.exec("s=$(date +%s%N); " + script + "; e=$(date +%s%N); echo $((e - s))");
  if (r.exit_code != 0) throw Error(ErrorKind::Internal, "guest command failed: " + r.stderr_data);
  return std::stod(r.stdout_data) / 1e9;
}

const char* kMmapScript = R"(
import mmap, os
fd = os.open('/d/mapped', os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, 4096)
try:
    m = mmap.mmap(fd, 4096, mmap.MAP_SHARED)
    m[:7] = b'mmapped'
    m.flush()
    m.close()
    print('ok')
except OSError as e:
    print('fails: ' + os.strerror(e.errno))
)";

MountNumbers measure_mounts(const std::string& image, int mb, const fs::path& tmp) {
  MountNumbers n;
  fs::path bulk = tmp / ("bulk-" + image), direct = tmp / ("direct-" + image);
  fs::create_directories(bulk);
  fs::create_directories(direct);
  VmOptions o;
  o.image = image;
  o.register_session = false;
  o.network.enabled = false;
  o.mounts.push_back({"/b", vfs::host_dir(bulk)});
  vfs::MountOptions direct_io;
  direct_io.transport = vfs::FsTransport::Virtiofs;
  direct_io.direct_io = true;
  o.mounts.push_back({"/d", vfs::host_dir(direct), direct_io});
  Vm vm = Vm::create(o);
  n.kernel = vm.info().kernel_release;
  const std::string count = std::to_string(mb);
  double w = guest_seconds(vm, "dd if=/dev/zero of=/b/big bs=1M count=" + count + " conv=fsync status=none");
  vm.exec("sync; echo 3 > /proc/sys/vm/drop_caches");
  double r = guest_seconds(vm, "dd if=/b/big of=/dev/null bs=1M status=none");
  n.write_mb_s = mb / w;
  n.read_mb_s = mb / r;
  vm.write_file("/tmp/shared_mapping.py", kMmapScript);
  ExecResult m = vm.exec(std::vector<std::string>{"python3", "/tmp/shared_mapping.py"});
  n.mmap_result = m.exit_code == 0 ? m.stdout_data : "python3 failed: " + m.stderr_data;
  if (!n.mmap_result.empty() && n.mmap_result.back() == '\n') n.mmap_result.pop_back();
  std::string host;
  std::ifstream(direct / "mapped") >> host;
  if (n.mmap_result == "ok" && host.rfind("mmapped", 0) != 0)
    n.mmap_result = "written, but the host file says '" + host + "'";
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const int runs = argc > 1 ? std::atoi(argv[1]) : 7;
  const int mb = argc > 2 ? std::atoi(argv[2]) : 200;
  const std::string other = argc > 3 ? argv[3] : "debian-base-6.12";
  const std::string base = argc > 4 ? argv[4] : "debian-base";
  try {
    std::vector<double> tb, to;
    for (int i = 0; i < runs; ++i) {
      if (i % 2) {
        to.push_back(cold_exec(other));
        tb.push_back(cold_exec(base));
      } else {
        tb.push_back(cold_exec(base));
        to.push_back(cold_exec(other));
      }
    }
    auto tmp = paths::make_private_temp_dir("gondolin-bench-kernel");
    MountNumbers nb = measure_mounts(base, mb, tmp), no = measure_mounts(other, mb, tmp);
    fs::remove_all(tmp);
    std::printf("baseline %s: %s; other %s: %s; %d runs, %d MB\n\n", base.c_str(), nb.kernel.c_str(), other.c_str(),
                no.kernel.c_str(), runs, mb);
    std::printf("boot   cold exec -- true   %6.2f s  [%s]\n", median(tb), list(tb).c_str());
    std::printf("                           %6.2f s  [%s]\n", median(to), list(to).c_str());
    std::printf("RATIO boot other/baseline  %6.2fx  (the default switches at <= 1.05x)\n\n", median(to) / median(tb));
    std::printf("bulk   write (fsync)       %6.0f MB/s  vs %6.0f MB/s   RATIO %.2fx\n", no.write_mb_s, nb.write_mb_s,
                no.write_mb_s / nb.write_mb_s);
    std::printf("       read (cold cache)   %6.0f MB/s  vs %6.0f MB/s   RATIO %.2fx\n", no.read_mb_s, nb.read_mb_s,
                no.read_mb_s / nb.read_mb_s);
    std::printf("mmap   MAP_SHARED, cache=direct: %s: %s; %s: %s\n", no.kernel.c_str(), no.mmap_result.c_str(),
                nb.kernel.c_str(), nb.mmap_result.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gondolin-bench-kernel: %s\n", e.what());
    return 1;
  }
  return 0;
}
