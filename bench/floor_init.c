/* The boot-time floor: the least a guest must do before it can talk to the
 * host. Loads the virtio-mmio and virtio-console modules from gondolin's own
 * initramfs, writes one byte to the first virtio-serial port, powers off. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

static const char* const wanted[] = {
    "/virtio.ko",     "/virtio_ring.ko",   "/virtio_mmio.ko", "/virtio_pci_legacy_dev.ko", "/virtio_pci_modern_dev.ko",
    "/virtio_pci.ko", "/virtio_console.ko"};

int main(void) {
  mount("proc", "/proc", "proc", 0, NULL);
  mount("sysfs", "/sys", "sysfs", 0, NULL);
  mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
  struct utsname u;
  uname(&u);
  char list[256];
  snprintf(list, sizeof list, "/lib/modules/%s/gondolin.modules", u.release);
  FILE* f = fopen(list, "r");
  char cls[32], path[512];
  /* The list is in dependency order; keep it, filtered to what the port needs. */
  while (f && fscanf(f, "%31s %511s", cls, path) == 2) {
    for (unsigned i = 0; i < sizeof wanted / sizeof wanted[0]; ++i) {
      size_t n = strlen(path), m = strlen(wanted[i]);
      if (n >= m && strcmp(path + n - m, wanted[i]) == 0) {
        int fd = open(path, O_RDONLY);
        syscall(SYS_finit_module, fd, "", 0);
        close(fd);
      }
    }
  }
  for (int tries = 0; tries < 5000; ++tries) {
    for (int dev = 0; dev < 10; ++dev) {
      char port[32];
      snprintf(port, sizeof port, "/dev/vport%dp1", dev);
      int fd = open(port, O_WRONLY);
      if (fd < 0) continue;
      ssize_t ignored = write(fd, "R", 1);
      (void)ignored;
      close(fd);
      goto done;
    }
    usleep(1000);
  }
done:
  sleep(2);
  reboot(RB_POWER_OFF);
  return 0;
}
