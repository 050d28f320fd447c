// The SSH git policy as pure functions: repository patterns, git commands as
// git's ssh transport writes them, and the decision on each.
#include <gtest/gtest.h>

#include "config/ssh_git_rules.h"
#include "config/ssh_rules.h"
#include "egress/ssh/ssh_request_rules.h"
#include "gondolin/error.h"

using namespace gondolin;
using namespace gondolin::egress;

namespace {

std::string usage_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(SshGitRepo, PatternsAreNormalizedAndChecked) {
  EXPECT_EQ(config::parse_ssh_git_repo("GitHub.com:/org/repo.git/"), "github.com:org/repo");
  EXPECT_EQ(config::parse_ssh_git_repo("org/*"), "org/*");
  EXPECT_EQ(config::parse_ssh_git_repo("*"), "*");
  for (const char* bad : {"", "github.com:", "org/../x", "org//x", "org/./x", "org/re*", "o*/x", "a b", "it's",
                          "x.git.git", "org/x.git/.git"})
    EXPECT_NE(usage_error([&] { config::parse_ssh_git_repo(bad); }).find("--ssh-git-repo"), std::string::npos) << bad;
}

TEST(SshGitRepo, MatchingIgnoresSlashesAndDotGitButNotDotSegments) {
  const std::vector<std::string> p = {"github.com:org/app", "mirror.test:team/*", "shared/tools"};
  EXPECT_TRUE(config::git_repo_allowed(p, "github.com", "org/app.git"));
  EXPECT_TRUE(config::git_repo_allowed(p, "github.com", "/org/app"));
  EXPECT_FALSE(config::git_repo_allowed(p, "github.com", "org/app2"));
  EXPECT_FALSE(config::git_repo_allowed(p, "other.test", "org/app")) << "host-bound pattern";
  EXPECT_TRUE(config::git_repo_allowed(p, "mirror.test", "team/x/y.git"));
  EXPECT_FALSE(config::git_repo_allowed(p, "mirror.test", "team"));
  EXPECT_FALSE(config::git_repo_allowed(p, "mirror.test", "team/../secret"));
  EXPECT_FALSE(config::git_repo_allowed(p, "github.com", "org/app/../../secret"));
  EXPECT_TRUE(config::git_repo_allowed(p, "any.test", "shared/tools")) << "host-free pattern";
  EXPECT_FALSE(config::git_repo_allowed(p, "github.com", "~/org/app"));
}

TEST(SshGitCommand, ParsedAsGitWritesIt) {
  auto a = parse_git_command("git-upload-pack 'org/app.git'");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->service, "git-upload-pack");
  EXPECT_EQ(a->repository, "org/app.git");
  EXPECT_FALSE(a->is_push());
  auto b = parse_git_command("git-receive-pack 'it'\\''s.git'");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->repository, "it's.git");
  EXPECT_TRUE(b->is_push());
  auto lfs = parse_git_command("git-lfs-authenticate 'org/app.git' upload");
  ASSERT_TRUE(lfs);
  EXPECT_EQ(lfs->operation, "upload");
  EXPECT_TRUE(lfs->is_push());
  EXPECT_FALSE(parse_git_command("git-lfs-transfer org/app download")->is_push());
  EXPECT_FALSE(parse_git_command("git-upload-pack 'x'; curl evil"));
  EXPECT_FALSE(parse_git_command("sh -c 'git-receive-pack x'"));
  EXPECT_FALSE(parse_git_command("git-upload-pack"));
}

TEST(SshGitPolicy, DecidesEachCommand) {
  SshGitPolicy off;
  EXPECT_EQ(git_policy_problem(off, "github.com", "cat /etc/passwd"), "") << "inactive: everything passes";

  SshGitPolicy read_only;
  read_only.push = false;
  EXPECT_EQ(git_policy_problem(read_only, "github.com", "git-upload-pack 'org/app.git'"), "");
  EXPECT_NE(
      git_policy_problem(read_only, "github.com", "git-receive-pack 'org/app.git'").find("pushes are not allowed"),
      std::string::npos);
  EXPECT_NE(git_policy_problem(read_only, "github.com", "git-lfs-transfer 'org/app.git' upload").find("pushes"),
            std::string::npos);
  EXPECT_NE(git_policy_problem(read_only, "github.com", "sh -c 'git-receive-pack x'").find("only git commands"),
            std::string::npos);

  SshGitPolicy listed;
  listed.repos = {"github.com:org/app"};
  EXPECT_EQ(git_policy_problem(listed, "github.com", "git-receive-pack '/org/app.git'"), "");
  EXPECT_NE(git_policy_problem(listed, "github.com", "git-upload-pack 'org/other.git'")
                .find("repository 'org/other.git' on github.com is not one the SSH git policy allows"),
            std::string::npos);
}
