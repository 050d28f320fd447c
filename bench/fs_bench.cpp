// Guest file-system speed: gondolin's FUSE mounts against QEMU's built-in
// virtio-9p (-fsdev local), on the same host directory, in the same VM (all
// are mounted at once), as ratios measured in the same run. Gondolin's side
// comes three times: a mount without options ("default": virtio-fs with the
// guest page cache where QEMU can snapshot it, else virtio-serial), FUSE over
// virtio-serial ("serial") and virtio-fs with FOPEN_DIRECT_IO ("vfs-direct").
// Workloads:
//
//   find+stat  `find | xargs stat` over 5 000 small files in 50 directories
//   cat        `find | xargs cat` of the same files
//   git status in a committed 5 000-file repository (each side has its own
//              identical copy, so neither refreshes the other's index)
//   create     5 000 new small files in 50 new directories (shell `echo >`)
//   delete     `rm -rf` of those files and directories
//   read       `dd` of a 500 MB file (MB configurable) to /dev/null
//   write      `dd` of 500 MB to a new file, with fsync
//
// Every run starts from cold guest caches (drop_caches). Median of RUNS per
// side, alternating, each run starting with the next side. A fifth argument
// picks workloads (comma list). The ratios printed are 9p time / gondolin time: ≥ 1.0×
// means gondolin is not slower.
//
// The default image's kernel (Debian cloud) has no 9p; the baseline needs an
// image built from images/debian-generic-9p.json (Debian's generic kernel):
//   gondolin build images/debian-generic-9p.json
//
// Usage: gondolin-bench-fs [RUNS] [MB] [IMAGE] [WORKLOAD,...]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

#include "bench_util.h"
#include "gondolin/error.h"
#include "gondolin/vm.h"
#include "util/paths.h"
#include "util/subprocess.h"
#include "vm/qemu_command.h"
#include "vm/vm_internals.h"

using namespace gondolin;
using namespace gondolin::bench;
namespace fs = std::filesystem;

namespace {

constexpr int kDirs = 50;
constexpr int kFilesPerDir = 100;

void make_tree(const fs::path& root) {
  std::string filler(2048, 'x');
  for (int d = 0; d < kDirs; ++d) {
    fs::path dir = root / ("d" + std::to_string(d));
    fs::create_directories(dir);
    for (int f = 0; f < kFilesPerDir; ++f) {
      std::ofstream out(dir / ("f" + std::to_string(f) + ".txt"));
      // Sizes from 100 bytes to 2 KB, like source files.
      out << filler.substr(0, static_cast<std::size_t>(100 + (d * kFilesPerDir + f) * 37 % 1948)) << "\n";
    }
  }
}

void run_host(const std::vector<std::string>& argv) {
  CommandResult r = run_command(argv);
  if (!r.ok()) throw Error(ErrorKind::Io, argv[0] + " failed: " + r.output);
}

// Runs `script` in the guest after dropping its caches; returns the seconds the script took there.
double timed(Vm& vm, const std::string& script) {
  std::string wrapped = "set -e; sync; echo 3 > /proc/sys/vm/drop_caches; t0=$(date +%s%N); " + script +
                        "; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000 ))";
  ExecOptions o;
  o.timeout = std::chrono::minutes(20);
  auto r = vm.exec(Command::argv({"/bin/bash", "-c", wrapped}), o);
  if (r.exit_code != 0) throw Error(ErrorKind::Guest, "benchmark step failed: " + script + "\n" + r.stderr_data);
  return std::stod(r.stdout_data) / 1e6;
}

const char* const kWorkloads[] = {"find+stat", "cat", "git status", "create", "delete", "read", "write"};

// The guest command of one workload on the mount at `dir`; `side` names that side's own files.
std::string workload_script(const std::string& name, const std::string& dir, const std::string& side, int mb) {
  if (name == "find+stat") return "find " + dir + "/tree -type f -print0 | xargs -0 stat -c %s >/dev/null";
  if (name == "cat") return "find " + dir + "/tree -type f -print0 | xargs -0 cat >/dev/null";
  if (name == "git status") return "git -C " + dir + "/repo-" + side + " status --porcelain >/dev/null";
  // 5 000 new small files in 50 directories (as an unpacked npm tree or a build's objects), then their removal.
  if (name == "create")
    return "mkdir -p " + dir + "/new-" + side + " && cd " + dir + "/new-" + side +
           " && for d in $(seq 50); do mkdir d$d; for f in $(seq 100); do echo x > d$d/f$f; done; done";
  if (name == "delete") return "rm -rf " + dir + "/new-" + side;
  if (name == "read") return "dd if=" + dir + "/big of=/dev/null bs=1M status=none";
  return "dd if=/dev/zero of=" + dir + "/out-" + side + " bs=1M count=" + std::to_string(mb) +
         " conv=fsync status=none; rm " + dir + "/out-" + side;
}

struct Side {
  const char* name;  // also names its own git repository and output file
  std::string dir;   // in the guest
  std::vector<double> seconds;
};

// The host directory every side mounts: the 5 000-file tree, one git
// repository per side, the big file.
void prepare(const fs::path& root, const std::vector<Side>& sides, int mb) {
  std::printf("preparing %s: 5000 files, two 5000-file git repositories, a %d MB file\n", root.c_str(), mb);
  make_tree(root / "tree");
  const fs::path first_repo = root / ("repo-" + std::string(sides[0].name));
  make_tree(first_repo);
  run_host({"git", "-C", first_repo.string(), "init", "-q"});
  run_host({"git", "-C", first_repo.string(), "add", "."});
  run_host({"git", "-C", first_repo.string(), "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"});
  for (std::size_t i = 1; i < sides.size(); ++i)
    run_host({"cp", "-a", first_repo.string(), (root / ("repo-" + std::string(sides[i].name))).string()});
  run_host({"dd", "if=/dev/urandom", "of=" + (root / "big").string(), "bs=1M", "count=" + std::to_string(mb),
            "status=none"});
}

// A VM with the three gondolin mounts of `root` and QEMU's virtio-9p of it
// at /p9; nullopt (after saying why) if the image's kernel has no 9p.
std::optional<Vm> start_vm(const fs::path& root, const std::string& image) {
  VmOptions o;
  o.image = image;
  o.memory_mib = 1024;
  o.network.enabled = false;
  o.mounts.push_back({"/def", vfs::host_dir(root)});  // what users get without flags
  vfs::MountOptions serial;
  serial.transport = vfs::FsTransport::Serial;
  o.mounts.push_back({"/ser", vfs::host_dir(root), serial});
  vfs::MountOptions virtiofs;
  virtiofs.transport = vfs::FsTransport::Virtiofs;
  virtiofs.direct_io = true;
  o.mounts.push_back({"/vfd", vfs::host_dir(root), virtiofs});
  VmHooks hooks;
  hooks.qemu_extra_args = {"-fsdev", "local,id=bench9p,path=" + root.string() + ",security_model=none", "-device",
                           vm::virtio_device(o.machine, "virtio-9p") + ",fsdev=bench9p,mount_tag=bench9p"};
  Vm vm = VmInternals::create(o, hooks);
  auto m =
      vm.exec(std::string("mkdir -p /p9 && mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 "
                          "bench9p /p9 && git config --global --add safe.directory '*'"));
  if (m.exit_code != 0) {
    std::fprintf(stderr, "cannot mount virtio-9p in the guest (is this a kernel with 9p? see the header):\n%s",
                 m.stderr_data.c_str());
    return std::nullopt;
  }
  return vm;
}

// RUNS of one workload on every side, then its row: each side's median and
// the 9p ratios.
void measure(Vm& vm, std::vector<Side>& sides, const std::string& workload, int runs, int mb) {
  for (auto& side : sides) side.seconds.clear();
  for (int i = 0; i < runs; ++i)
    // Each run starts with another side: whoever follows a big write
    // shares the host's writeback of it, so no side always pays for that.
    for (std::size_t k = 0; k < sides.size(); ++k) {
      Side& side = sides[(k + static_cast<std::size_t>(i)) % sides.size()];
      // Each create starts from nothing, each delete from a fresh tree: the other half runs untimed.
      if (workload == "delete") timed(vm, workload_script("create", side.dir, side.name, mb));
      side.seconds.push_back(timed(vm, workload_script(workload, side.dir, side.name, mb)));
      if (workload == "create") timed(vm, workload_script("delete", side.dir, side.name, mb));
    }
  std::printf("%-11s", workload.c_str());
  for (const auto& side : sides) std::printf(" %10.2f", median(side.seconds));
  const double p9 = median(sides.back().seconds);
  for (std::size_t i = 0; i + 1 < sides.size(); ++i) {
    double t = median(sides[i].seconds);
    std::printf(" %8.2fx", t > 0 ? p9 / t : 0);
  }
  std::string all;
  for (const auto& side : sides) all += std::string(all.empty() ? "" : " | ") + side.name + " " + list(side.seconds);
  std::printf("   [%s]\n", all.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 3;
  int mb = argc > 2 ? std::atoi(argv[2]) : 500;
  std::string image = argc > 3 ? argv[3] : "debian-generic-9p";
  const std::string only = argc > 4 ? argv[4] : "";  // comma list of workloads; empty: all
  if (runs < 1 || mb < 1) {
    std::fprintf(stderr, "usage: gondolin-bench-fs [RUNS] [MB] [IMAGE] [WORKLOAD,...]\n");
    return 2;
  }
  try {
    fs::path root = paths::make_private_temp_dir("gondolin-bench-fs");
    struct Cleanup {
      fs::path p;
      ~Cleanup() {
        std::error_code ec;
        fs::remove_all(p, ec);
      }
    } cleanup{root};
    std::vector<Side> sides = {
        {"default", "/def", {}}, {"serial", "/ser", {}}, {"vfs-direct", "/vfd", {}}, {"9p", "/p9", {}}};
    prepare(root, sides, mb);
    std::optional<Vm> vm = start_vm(root, image);
    if (!vm) return 1;
    // Each side's repository gets its index refreshed once, outside the measurement.
    std::string refresh = "true";
    for (const auto& side : sides)
      refresh += "; git -C " + side.dir + "/repo-" + side.name + " status --porcelain >/dev/null";
    timed(*vm, refresh);

    std::printf("%-11s", "workload");
    for (const auto& side : sides) std::printf(" %10s", side.name);
    for (std::size_t i = 0; i + 1 < sides.size(); ++i)
      std::printf(" %9s", ("9p/" + std::string(sides[i].name)).substr(0, 9).c_str());
    std::printf("   (median of %d; seconds in the guest)\n", runs);
    for (const char* name : kWorkloads)
      if (only.empty() || ("," + only + ",").find("," + std::string(name) + ",") != std::string::npos)
        measure(*vm, sides, name, runs, mb);
    vm->exec(std::string("umount /p9"));
    vm->close();
  } catch (const Error& e) {
    std::fprintf(stderr, "gondolin-bench-fs: %s\n", e.what());
    return 1;
  }
  return 0;
}
