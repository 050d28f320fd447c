// Customised images as a user builds them: a spec with env and post_build
// (files copied in, commands run in the new root with Debian's packages),
// built with `gondolin build --tag`, then booted.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "cli_expect.h"
#include "test_support.h"

using namespace gondolin::testing;
namespace fs = std::filesystem;

TEST(CustomImage, PostBuildCopyCommandsAndEnvShowInTheGuest) {
  TempDir tmp;
  fs::create_directories(tmp.path() / "payload/bin");
  { std::ofstream(tmp.path() / "payload/a.txt") << "copied from the host\n"; }
  { std::ofstream(tmp.path() / "payload/bin/hello") << "#!/bin/sh\necho \"hello, $1\"\n"; }
  ::chmod((tmp.path() / "payload/bin/hello").c_str(), 0755);
  fs::path spec = tmp.path() / "spec.json";
  {
    std::ofstream(spec) << R"({
      "name": "spec-name", "tag": "x",
      "packages": ["bash", "coreutils", "ca-certificates", "python3", "busybox-static"],
      "env": {"GREETING": "hello from the image", "ORIGIN": "image"},
      "init_extra": "echo started > /run/init-extra-ran\nsleep 1000 >/dev/null 2>&1 &\necho giving up now >&2\nexit 3",
      "post_build": {
        "copy": [{"src": "payload", "dest": "/opt/payload"}],
        "commands": ["apt-get install -y --no-install-recommends jq",
                     "/opt/payload/bin/hello build > /etc/built-by-command"]
      }
    })";
  }
  auto build = run_gondolin({"build", spec.string(), "--tag", "gondolin-test-custom:t1", "--quiet"},
                            CliOptions{"", {}, {}, std::chrono::seconds(900), {}});
  ASSERT_EQ(build.exit_code, 0) << build.err;
  EXPECT_EQ(build.err, "") << "--quiet prints no progress";
  EXPECT_NE(build.out.find(" gondolin-test-custom:t1 "), std::string::npos) << build.out;
  // The build also makes the boot template of the default machine shape (a
  // rebuild too, if it is gone): the image's first start resumes it.
  const fs::path image_dir = build.out.substr(build.out.rfind(' ') + 1, build.out.size() - build.out.rfind(' ') - 2);
  fs::remove_all(image_dir / "templates");
  auto rebuild = run_gondolin({"build", spec.string(), "--tag", "gondolin-test-custom:t1", "--quiet"},
                              CliOptions{"", {}, {}, std::chrono::seconds(900), {}});
  ASSERT_EQ(rebuild.exit_code, 0) << rebuild.err;
  EXPECT_EQ(rebuild.out, build.out);
  std::size_t templates = 0;
  for (const auto& e : fs::directory_iterator(image_dir / "templates")) templates += e.is_directory();
  EXPECT_EQ(templates, 1u) << image_dir;

  auto r = run_gondolin({"exec", "--image", "gondolin-test-custom:t1", "-e", "ORIGIN=flag", "--", "sh", "-c",
                         "echo \"$GREETING/$ORIGIN\"; jq -n 6*7; cat /etc/built-by-command /opt/payload/a.txt; "
                         "stat -c '%a %U' /opt/payload/bin/hello; cat /run/init-extra-ran; "
                         "for p in /proc/[0-9]*; do cat $p/comm; done 2>/dev/null | grep -qx sleep && echo daemon-up"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& e : fs::directory_iterator(image_dir / "templates")) templates -= e.is_directory();
  EXPECT_EQ(templates, 0u) << "the first start used the build's template rather than making another";
  EXPECT_EQ(r.out, "hello from the image/flag\n42\nhello, build\ncopied from the host\n755 root\nstarted\ndaemon-up\n");
  // init_extra ran before the command, left its daemon running, and its
  // failure (exit 3) was reported rather than hidden.
  EXPECT_NE(r.err.find("the image's init_extra failed: exit status 3: giving up now"), std::string::npos) << r.err;
}

TEST(CustomImage, BadPostBuildIsRefusedInOneLine) {
  TempDir tmp;
  auto spec_with = [&](const std::string& post_build) {
    fs::path spec = tmp.path() / "spec.json";
    std::ofstream(spec, std::ios::trunc) << R"({"packages": ["bash"], "post_build": )" + post_build + "}";
    return run_gondolin({"build", spec.string(), "--work-dir", (tmp.path() / "w").string()});
  };
  expect_one_line_error(spec_with(R"({"run": ["true"]})"), "unknown key \"post_build.run\"");
  expect_one_line_error(spec_with(R"({"commands": "true"})"), "\"commands\" must be a list of strings");
  expect_one_line_error(spec_with(R"({"copy": [{"src": "missing", "dest": "/x"}]})"), "does not exist");
  expect_one_line_error(spec_with(R"({"copy": [{"src": "spec.json", "dest": "/etc/../../x"}]})"),
                        "must be an absolute guest path without ..");
  expect_one_line_error(spec_with(R"({"copy": [{"src": "spec.json"}]})"), "{\"src\": HOST_PATH, \"dest\": GUEST_PATH}");
  fs::path env_spec = tmp.path() / "env.json";
  std::ofstream(env_spec) << R"({"env": {"BAD-NAME": "x"}})";
  expect_one_line_error(run_gondolin({"build", env_spec.string()}), "env name \"BAD-NAME\"");
  expect_one_line_error(run_gondolin({"build", "--tag", "a b:c"}), "invalid --tag 'a b:c'");
}

// A post_build command that fails is named in the one line, with its exit
// status and the last line it wrote to stderr; the tag is not made.
TEST(CustomImage, FailingPostBuildCommandIsNamed) {
  TempDir tmp;
  fs::path spec = tmp.path() / "spec.json";
  std::ofstream(spec) << R"({"packages": ["bash"],
    "post_build": {"commands": ["true", "echo checking; echo no such thing >&2; exit 7", "touch /never"]}})";
  auto r = run_gondolin({"build", spec.string(), "--tag", "gondolin-test-custom:fails", "-q"},
                        CliOptions{"", {}, {}, std::chrono::seconds(900), {}});
  expect_one_line_error(r,
                        "post_build command 2 (echo checking; echo no such thing >&2; exit 7) failed with exit "
                        "status 7: no such thing [full log: ");
  auto ls = run_gondolin({"image", "ls"});
  EXPECT_EQ(ls.out.find("gondolin-test-custom:fails"), std::string::npos) << ls.out;
}
