// Bad input gets one clear line on stderr and exit status 125, and no VM.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli_expect.h"
#include "test_support.h"

using namespace gondolin::testing;
namespace fs = std::filesystem;

namespace {

// A copy of the default image's directory with its files linked, to damage freely.
fs::path copy_default_image(const fs::path& into) {
  auto r = run_gondolin({"image", "inspect", "debian-base:latest"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto id_pos = r.out.find("\"id\": \"");
  std::string id = r.out.substr(id_pos + 7, 16);
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  fs::path store =
      xdg && *xdg ? fs::path(xdg) / "gondolin/images" : fs::path(std::getenv("HOME")) / ".cache/gondolin/images";
  fs::path src = store / id;
  fs::path dst = into / "image";
  fs::create_directories(dst);
  for (const char* f : {"kernel", "initramfs.cpio", "rootfs.ext4"}) fs::create_symlink(src / f, dst / f);
  fs::copy_file(src / "manifest.json", dst / "manifest.json");
  fs::permissions(dst / "manifest.json", fs::perms::owner_all);
  return dst;
}

}  // namespace

TEST(CliErrors, UnknownImage) {
  expect_one_line_error(run_gondolin({"exec", "--image", "no-such-image:v9", "--", "true"}),
                        "image 'no-such-image:v9' not found");
}

TEST(CliErrors, DefaultImageFromEnvironment) {
  CliOptions o;
  o.env["GONDOLIN_DEFAULT_IMAGE"] = "also-missing:1";
  expect_one_line_error(run_gondolin({"exec", "--", "true"}, o), "also-missing:1");
}

TEST(CliErrors, CorruptManifest) {
  TempDir tmp;
  fs::path img = copy_default_image(tmp.path());
  { std::ofstream(img / "manifest.json", std::ios::trunc) << "{\"schema\": 1, \"id\": "; }
  expect_one_line_error(run_gondolin({"exec", "--image", img.string(), "--", "true"}), "not valid JSON");
  { std::ofstream(img / "manifest.json", std::ios::trunc) << "{\"schema\": 1}"; }
  expect_one_line_error(run_gondolin({"exec", "--image", img.string(), "--", "true"}), "missing field");
}

TEST(CliErrors, TruncatedImageFile) {
  TempDir tmp;
  fs::path img = copy_default_image(tmp.path());
  fs::remove(img / "initramfs.cpio");
  { std::ofstream(img / "initramfs.cpio") << "short"; }
  expect_one_line_error(run_gondolin({"exec", "--image", img.string(), "--", "true"}), "is damaged");
}

TEST(CliErrors, ImageOfThisVersionRunsFromAPath) {
  TempDir tmp;
  fs::path img = copy_default_image(tmp.path());
  auto r = run_gondolin({"exec", "--image", img.string(), "--", "echo", "ok"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok\n");
}

TEST(CliErrors, MissingQemuBinary) {
  CliOptions o;
  o.env["GONDOLIN_QEMU"] = "/nonexistent/qemu-system-x86_64";
  expect_one_line_error(run_gondolin({"exec", "--", "true"}, o),
                        "QEMU binary '/nonexistent/qemu-system-x86_64' not found");
}

TEST(CliErrors, QemuFailureShowsQemusOwnText) {
  TempDir tmp;
  fs::path fake = tmp.path() / "qemu-fails";
  {
    std::ofstream f(fake);
    f << "#!/bin/sh\necho 'qemu-system-x86_64: -accel tcg: something QEMU-specific went wrong' >&2\nexit 1\n";
  }
  fs::permissions(fake, fs::perms::owner_all);
  CliOptions o;
  o.env["GONDOLIN_QEMU"] = fake.string();
  expect_one_line_error(run_gondolin({"exec", "--", "true"}, o), "something QEMU-specific went wrong");
}

TEST(CliErrors, InvalidEnvSyntax) {
  expect_one_line_error(run_gondolin({"exec", "-e", "NOVALUE", "--", "true"}), "invalid -e 'NOVALUE'");
  expect_one_line_error(run_gondolin({"exec", "-e", "=x", "--", "true"}), "invalid -e '=x'");
  expect_one_line_error(run_gondolin({"exec", "-e", "BAD KEY=1", "--", "true"}), "invalid -e");
}

TEST(CliErrors, BadFlags) {
  expect_one_line_error(run_gondolin({"exec", "--memory", "lots", "--", "true"}), "invalid --memory 'lots'");
  expect_one_line_error(run_gondolin({"exec", "--accel", "warp", "--", "true"}), "invalid --accel 'warp'");
  expect_one_line_error(run_gondolin({"exec", "--machine", "pc", "--", "true"}), "invalid --machine 'pc'");
  expect_one_line_error(run_gondolin({"exec"}), "exec needs either");
  expect_one_line_error(run_gondolin({"exec", "-c", "true", "--", "true"}), "exactly one");
  expect_one_line_error(run_gondolin({"exec", "--frobnicate", "true"}), "--frobnicate");
  expect_one_line_error(run_gondolin({"no-such-command"}), "no-such-command");
  expect_one_line_error(run_gondolin({"--log-level", "chatty", "exec", "--", "true"}), "unknown log level 'chatty'");
}

// Every word before `--` must be a known option of its (sub)command: a
// misspelt safety flag never runs the command under another policy.
TEST(CliErrors, UnknownOptionsAreRefusedForEverySubcommand) {
  expect_one_line_error(run_gondolin({"exec", "--bogus-flag", "--", "echo", "hi"}), "unknown option '--bogus-flag'");
  expect_one_line_error(run_gondolin({"exec", "--memory", "1G", "--nonsense", "--", "echo", "hi"}),
                        "unknown option '--nonsense'");
  expect_one_line_error(run_gondolin({"exec", "--no-netwrok", "--", "true"}), "did you mean --no-network?");
  expect_one_line_error(run_gondolin({"exec", "--alow-host", "example.com", "--", "true"}),
                        "did you mean --allow-host?");
  expect_one_line_error(run_gondolin({"exec", "--mount-hostfs", "/tmp:/w:r0", "--", "true"}), "unknown option 'r0'");
  expect_one_line_error(run_gondolin({"exec", "ls", "--", "-la"}), "unexpected argument 'ls'");
  for (const std::vector<std::string>& args : {std::vector<std::string>{"bash", "--bogus"},
                                               {"attach", "--bogus", "x"},
                                               {"list", "--bogus"},
                                               {"build", "--bogus"},
                                               {"image", "ls", "--bogus"},
                                               {"image", "rm", "--bogus", "x"},
                                               {"image", "inspect", "--bogus", "x"},
                                               {"image", "prune", "--bogus"},
                                               {"snapshot", "--bogus", "x"},
                                               {"snapshot", "ls", "--bogus"},
                                               {"snapshot", "rm", "--bogus", "x"},
                                               {"version", "--bogus"}}) {
    SCOPED_TRACE(args.front());
    expect_one_line_error(run_gondolin(args), "unknown option '--bogus'");
  }
  expect_one_line_error(run_gondolin({"image", "rm", "--forse", "x"}), "did you mean --force?");
}

TEST(CliErrors, BadBuildSpec) {
  TempDir tmp;
  fs::path spec = tmp.path() / "spec.json";
  { std::ofstream(spec) << R"({"packages": ["curl"], "kernel": "x"})"; }
  expect_one_line_error(run_gondolin({"build", spec.string(), "--work-dir", (tmp.path() / "w").string()}),
                        "unknown key \"kernel\"");
  expect_one_line_error(run_gondolin({"build", (tmp.path() / "missing.json").string()}), "does not exist");
}

TEST(CliErrors, VersionAndHelp) {
  auto v = run_gondolin({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("gondolin ", 0), 0u);
  auto h = run_gondolin({"help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("exec"), std::string::npos);
  EXPECT_NE(h.out.find("bash"), std::string::npos);
}
