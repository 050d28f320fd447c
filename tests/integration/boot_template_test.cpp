// Boot templates as a user meets them: starts resume the image's template,
// clones share no identity, a damaged or foreign template is made again with
// one line, and --cold boots the kernel. Each test uses its own memory size,
// so each has a template of its own while other tests run.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <set>
#include <sstream>

#include "gondolin/image.h"
#include "test_support.h"
#include "util/paths.h"

using namespace gondolin::testing;
namespace fs = std::filesystem;

namespace {

constexpr const char* kFromTemplate = "ready from its boot template";

CliResult exec_logged(const std::vector<std::string>& args, const std::string& level = "info") {
  std::vector<std::string> argv{"exec"};
  argv.insert(argv.end(), args.begin(), args.end());
  CliOptions o;
  o.env["GONDOLIN_LOG"] = level;
  o.unset_env = {"GONDOLIN_COLD"};
  return run_gondolin(argv, o);
}

// Starts VMs of `memory` (and `extra` options) until one comes from its
// template (the first makes it; another test may hold the lock for a moment).
void ensure_template(const std::string& memory, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"--memory", memory};
  args.insert(args.end(), extra.begin(), extra.end());
  args.insert(args.end(), {"--", "true"});
  for (int i = 0; i < 5; ++i) {
    CliResult r = exec_logged(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    if (r.err.find(kFromTemplate) != std::string::npos) return;
  }
  FAIL() << "no start of a " << memory << " VM came from a boot template";
}

// The template directory of the default image's VMs with `memory_mib` (the
// only one: each test has its own size). Only the image the tests start:
// templates of older builds of it may still sit in the cache.
fs::path template_dir(int memory_mib) {
  const std::string needle = "\"memory_mib\": " + std::to_string(memory_mib) + ",";
  const std::string image_id = gondolin::ImageStore::default_store().resolve("debian-base:latest").manifest.id;
  std::error_code ec;
  for (const auto& t : fs::directory_iterator(gondolin::paths::cache_dir() / "images" / image_id / "templates", ec))
    if (fs::exists(t.path() / "template.json") && slurp(t.path() / "template.json").find(needle) != std::string::npos)
      return t.path();
  return {};
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST(BootTemplate, ClonesOfOneTemplateShareNoIdentity) {
  ensure_template("704M");
  const std::string probe =
      "cat /proc/sys/kernel/random/uuid /proc/sys/kernel/random/boot_id; "
      "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; "
      "cat /sys/class/net/eth0/address /etc/machine-id; date +%s";
  auto start = [&] {
    return std::async(std::launch::async, [&] { return exec_logged({"--memory", "704M", "--", "sh", "-c", probe}); });
  };
  auto a = start(), b = start();
  CliResult ra = a.get(), rb = b.get();
  const auto host_now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  ASSERT_EQ(ra.exit_code, 0) << ra.err;
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  EXPECT_NE(ra.err.find(kFromTemplate), std::string::npos) << ra.err;
  EXPECT_NE(rb.err.find(kFromTemplate), std::string::npos) << rb.err;
  auto la = lines(ra.out), lb = lines(rb.out);
  ASSERT_EQ(la.size(), 6u) << ra.out;
  ASSERT_EQ(lb.size(), 6u) << rb.out;
  const char* what[] = {"uuid", "boot_id", "/dev/urandom", "MAC address", "machine-id"};
  for (std::size_t i = 0; i < 5; ++i) EXPECT_NE(la[i], lb[i]) << "two clones share their " << what[i];
  EXPECT_EQ(la[1].size(), 36u);
  EXPECT_EQ(la[2].size(), 64u);
  EXPECT_EQ(la[4].size(), 32u);
  for (const auto& l : {la, lb}) EXPECT_LE(std::llabs(std::stoll(l[5]) - host_now), 2) << "guest clock " << l[5];
}

TEST(BootTemplate, ADamagedTemplateIsMadeAgainWithOneLine) {
  ensure_template("576M");
  fs::path dir = template_dir(576);
  ASSERT_FALSE(dir.empty());
  // A truncated state file.
  fs::resize_file(dir / "state", fs::file_size(dir / "state") / 2);
  CliResult r = exec_logged({"--memory", "576M", "--", "echo", "ok"}, "warn");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok\n");
  auto err = lines(r.err);
  ASSERT_EQ(err.size(), 1u) << r.err;
  EXPECT_NE(err[0].find("boot template"), std::string::npos) << r.err;
  EXPECT_NE(err[0].find("truncated"), std::string::npos) << r.err;
  // Made again: the next start resumes it without a word.
  r = exec_logged({"--memory", "576M", "--", "true"});
  EXPECT_NE(r.err.find(kFromTemplate), std::string::npos) << r.err;
}

TEST(BootTemplate, ATemplateOfAnotherQemuIsNeverResumed) {
  ensure_template("592M");
  fs::path dir = template_dir(592);
  ASSERT_FALSE(dir.empty());
  std::string meta = slurp(dir / "template.json");
  auto at = meta.find("\"qemu_version\": \"");
  ASSERT_NE(at, std::string::npos) << meta;
  at += sizeof("\"qemu_version\": \"") - 1;
  meta.replace(at, meta.find('"', at) - at, "QEMU emulator version 7.2.19");
  spit(dir / "template.json", meta);
  CliResult r = exec_logged({"--memory", "592M", "--", "true"}, "warn");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto err = lines(r.err);
  ASSERT_EQ(err.size(), 1u) << r.err;
  EXPECT_NE(err[0].find("QEMU emulator version 7.2.19"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(dir / "template.json").find("7.2.19"), std::string::npos) << "made again";
}

TEST(BootTemplate, ColdBootsTheKernel) {
  CliResult r = exec_logged({"--cold", "--", "true"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("guest ready in"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(kFromTemplate), std::string::npos) << r.err;
}

// Mounts take the first of a template's four file system slots: a virtio-fs
// host directory and a virtio-serial memory mount work on a templated start
// as on a cold one, the spare slots stay unmounted, and two concurrent starts
// (each with its own copy of the template's RAM, shared with its virtio-fs
// server) write the same host directory independently.
TEST(BootTemplate, MountsFillTheTemplatesSlots) {
  TempDir host;
  spit(host.path() / "in", "from the host");
  const std::vector<std::string> mounts{"--mount-hostfs", host.path().string() + ":/w", "--mount-memfs",
                                        "/m:transport=serial"};
  ensure_template("688M", mounts);
  fs::path dir = template_dir(688);
  ASSERT_FALSE(dir.empty());
  EXPECT_NE(slurp(dir / "template.json").find(R"("mount_slots": [
    "virtiofs",
    "serial",
    "virtiofs",
    "virtiofs"
  ])"),
            std::string::npos)
      << slurp(dir / "template.json");
  auto start = [&](const std::string& name) {
    return std::async(std::launch::async, [&, name] {
      std::vector<std::string> args{"--memory", "688M"};
      args.insert(args.end(), mounts.begin(), mounts.end());
      args.insert(args.end(), {"--", "sh", "-c",
                               "cat /w/in; echo; echo " + name + " > /w/" + name +
                                   "; echo mem > /m/f; cat /m/f; "
                                   "grep -c ' virtiofs \\| fuse' /proc/mounts"});
      return exec_logged(args);
    });
  };
  auto a = start("a"), b = start("b");
  for (CliResult r : {a.get(), b.get()}) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find(kFromTemplate), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "from the host\nmem\n2\n") << "two mounts, no spare slot mounted";
  }
  EXPECT_EQ(slurp(host.path() / "a"), "a\n");
  EXPECT_EQ(slurp(host.path() / "b"), "b\n");
}
