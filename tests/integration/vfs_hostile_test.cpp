// A hostile guest against its own mounts' channels: what breaks stays with
// the mount it broke.
#include <gtest/gtest.h>

#include <fstream>

#include "test_support.h"

using gondolin::testing::TempDir;

// A guest that kills a mount's forwarder and writes garbage into its port
// breaks that mount only: one warning on the host naming it, the VM, the
// other mount and the command go on, and nothing blames the control channel.
TEST(VfsCli, GarbageOnAMountPortStopsThatMountNotTheVm) {
  TempDir a, b;
  std::ofstream(a.path() / "a.txt") << "still here";
  const std::string script = R"SH(
for p in /sys/class/virtio-ports/*; do
  [ "$(cat $p/name)" = gondolin.fs1 ] && dev=/dev/$(basename $p)
done
for pid in $(ls /proc | grep -E '^[0-9]+$'); do
  [ "$(cat /proc/$pid/comm 2>/dev/null)" = gondolin-fs1 ] && kill -9 $pid
done
sleep 1
printf '\001\000\000\000garbage-garbage-garbage-garbage-garbage' > $dev
sleep 2
cat /a/a.txt; echo; ls /b >/dev/null 2>&1 || echo b-fails
echo done)SH";
  auto r = gondolin::testing::run_gondolin({"exec", "--mount-transport", "serial", "--mount-hostfs",
                                            a.path().string() + ":/a", "--mount-hostfs", b.path().string() + ":/b",
                                            "--", "sh", "-c", script});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "still here\nb-fails\ndone\n") << r.err;
  EXPECT_NE(r.err.find("(/b)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("impossible length"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("control channel"), std::string::npos) << r.err;
}
