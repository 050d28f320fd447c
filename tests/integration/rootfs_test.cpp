// The guest's writable root as a job sees it: on a disk of the VM's own (cow,
// the default), in memory, or read-only (--rootfs-mode).
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <thread>

#include "gondolin/image.h"
#include "test_support.h"

using namespace gondolin::testing;
namespace fs = std::filesystem;

namespace {

// 1536 distinct MiB blocks, the same in the guest's python as on the host.
constexpr const char* kWriteBigFile =
    "import random; b = random.Random(7).randbytes(1 << 20); f = open('/root/big', 'wb')\n"
    "for i in range(1536): f.write(i.to_bytes(8, 'little') + b[8:])\n";
constexpr const char* kHashBigFile =
    "import hashlib, random; b = random.Random(7).randbytes(1 << 20); h = hashlib.sha256()\n"
    "for i in range(1536): h.update(i.to_bytes(8, 'little') + b[8:])\n"
    "print(h.hexdigest())\n";

std::vector<fs::path> entries(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path());
  return out;
}

}  // namespace

// 512 MiB of RAM, 1.5 GiB written under /root and read back intact: the
// writes went to the disk, not to memory. The disk lives in the cache
// directory while the VM runs and is gone when it ends.
TEST(Rootfs, AJobWritesMoreThanGuestMemoryToTheRootDisk) {
  TempDir cache;
  std::string expected = host_sh("python3 -c \"" + std::string(kHashBigFile) + "\"");
  expected.erase(expected.find_last_not_of('\n') + 1);
  const std::string image = gondolin::ImageStore::default_store().resolve("debian-base:latest").dir.string();
  const std::string script = "python3 -c \"" + std::string(kWriteBigFile) +
                             "\" && sha256sum /root/big | cut -d' ' -f1 && df -k / | tail -1 | awk '{print $2}'";
  CliOptions o;
  o.env["XDG_CACHE_HOME"] = cache.path().string();
  o.timeout = std::chrono::seconds(600);
  auto job = std::async(std::launch::async, [&] {
    return run_gondolin({"exec", "--image", image, "--memory", "512M", "--", "sh", "-c", script}, o);
  });
  const fs::path disks = cache.path() / "gondolin" / "disks";
  bool saw_disk = false;
  while (job.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready)
    for (const auto& d : entries(disks)) saw_disk = saw_disk || fs::exists(d / "rootfs-rw.img");
  auto r = job.get();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string hash = r.out.substr(0, r.out.find('\n'));
  EXPECT_EQ(hash, expected);
  long disk_kib = std::stol(r.out.substr(r.out.find('\n') + 1));
  EXPECT_GT(disk_kib, 1900L * 1024) << "the default root is a 2G disk";
  EXPECT_TRUE(saw_disk);
  EXPECT_TRUE(entries(disks).empty()) << "the VM's disk outlived it";
}

TEST(Rootfs, MemoryReadonlyAndASmallDisk) {
  // memory: today's tmpfs overlay, bounded by RAM.
  auto memory =
      run_gondolin({"exec", "--rootfs-mode", "memory", "--", "sh", "-c", "df -k / | tail -1 | awk '{print $2}'"});
  ASSERT_EQ(memory.exit_code, 0) << memory.err;
  EXPECT_LT(std::stol(memory.out), 512L * 1024);

  // readonly: EROFS for the guest's programs; /tmp and the mounts still work.
  auto ro = run_gondolin(
      {"exec", "--rootfs-mode", "readonly", "--mount-memfs", "/scratch", "--", "sh", "-c",
       "touch /root/x 2>&1; touch /var/x 2>&1; echo t > /tmp/t && echo s > /scratch/s && cat /tmp/t /scratch/s"});
  EXPECT_EQ(ro.exit_code, 0) << ro.err;
  EXPECT_EQ(ro.out,
            "touch: cannot touch '/root/x': Read-only file system\n"
            "touch: cannot touch '/var/x': Read-only file system\nt\ns\n");

  // cow with --rootfs-size: a full disk is ENOSPC for the writer, nothing worse.
  auto full = run_gondolin({"exec", "--rootfs-size", "100M", "--", "sh", "-c",
                            "dd if=/dev/zero of=/root/fill bs=1M count=200 2>&1 | grep -o 'No space left on device'; "
                            "rm /root/fill && echo still-writable > /root/after && cat /root/after"});
  EXPECT_EQ(full.exit_code, 0) << full.err;
  EXPECT_EQ(full.out, "No space left on device\nstill-writable\n");
}

TEST(Rootfs, BadRootfsFlagsAreRefusedBeforeBooting) {
  auto mode = run_gondolin({"exec", "--rootfs-mode", "tmpfs", "--", "true"});
  EXPECT_EQ(mode.exit_code, 125);
  EXPECT_EQ(mode.err, "gondolin: invalid --rootfs-mode 'tmpfs': use cow, memory or readonly\n");
  auto size = run_gondolin({"exec", "--rootfs-size", "lots", "--", "true"});
  EXPECT_EQ(size.exit_code, 125);
  EXPECT_EQ(size.err, "gondolin: invalid --rootfs-size 'lots': use a size like 512M or 2G\n");
  auto tiny = run_gondolin({"exec", "--rootfs-size", "1M", "--", "true"});
  EXPECT_EQ(tiny.exit_code, 125);
  EXPECT_EQ(tiny.err, "gondolin: --rootfs-size must be between 64M and 16T\n");
}
