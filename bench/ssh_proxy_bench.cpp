// SSH proxy cost, as ratios against the same client talking to the same sshd
// directly, measured in the same run (loopback, no VM):
//
//   connect+exec  `ssh HOST true`, median of N (the proxy does two handshakes)
//   download      `ssh HOST 'head -c 200M /dev/zero'` throughput
//   upload        200 MB into `ssh HOST 'cat >/dev/null'`
//   git clone     a bare repository of ~30 MB of incompressible files
//
// The "guest" path includes the test harness's loopback relay standing in for
// the network stack.
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "bench_util.h"
#include "egress/ssh/ssh_proxy.h"
#include "ssh_test_harness.h"
#include "util/files.h"

using namespace gondolin;
using namespace gondolin::bench;
using namespace gondolin::ssh_test;

namespace {

constexpr const char* kHost = "git.example.test";

double timed(const std::vector<std::string>& argv, const ProgramOptions& o = {}) {
  auto start = Clock::now();
  run_ok(argv, o);
  return seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  TempDir dir;
  OpenSshServer sshd(dir.path() / "sshd");
  test_support::IoThread io;

  egress::SshProxyConfig c;
  c.options.allowed_hosts = {{kHost, sshd.port()}};
  c.options.key_files = {{kHost, sshd.user_key().string()}};
  c.options.users = {{kHost, "root"}};
  fs::path kh = dir.path() / "upstream_known_hosts";
  write_file_atomic(kh,
                    "[" + std::string(kHost) + "]:" + std::to_string(sshd.port()) + " " + sshd.host_key_line() + "\n");
  c.options.known_hosts_files = {kh.string()};
  c.options.host_key_dir = (dir.path() / "config").string();
  c.test_loopback_hosts = {kHost};
  egress::SshProxy proxy(io.io(), c);
  GuestPort port(io, proxy, kHost);
  fs::path guest_cfg = write_guest_ssh_config(dir.path(), {{kHost, port.port()}}, proxy.guest_known_hosts());

  // The baseline: the same client straight to sshd with the key itself.
  fs::path direct_cfg = dir.path() / "direct_ssh_config";
  write_file_atomic(dir.path() / "direct_known_hosts",
                    "[127.0.0.1]:" + std::to_string(sshd.port()) + " " + sshd.host_key_line() + "\n");
  write_file_atomic(direct_cfg,
                    "Host " + std::string(kHost) + "\n  HostName 127.0.0.1\n  Port " + std::to_string(sshd.port()) +
                        "\n  User root\n  IdentityFile " + sshd.user_key().string() +
                        "\n  IdentitiesOnly yes\n  IdentityAgent none\n  BatchMode yes\n  UserKnownHostsFile " +
                        (dir.path() / "direct_known_hosts").string() + "\n  GlobalKnownHostsFile /dev/null\n");

  struct Path {
    const char* user;  // the proxy maps the guest's git@ to root upstream
    fs::path config;
  };
  Path paths[] = {{"root", direct_cfg}, {"git", guest_cfg}};

  // A repository worth cloning.
  fs::path repo = dir.path() / "repo.git";
  fs::path seed = dir.path() / "seed";
  ProgramOptions genv;
  genv.env = {{"HOME", dir.path().string()}, {"GIT_CONFIG_NOSYSTEM", "1"}, {"GIT_AUTHOR_NAME", "b"},
              {"GIT_AUTHOR_EMAIL", "b@b"},   {"GIT_COMMITTER_NAME", "b"},  {"GIT_COMMITTER_EMAIL", "b@b"}};
  run_ok({"git", "init", "-q", "--bare", "-b", "main", repo.string()}, genv);
  run_ok({"git", "init", "-q", "-b", "main", seed.string()}, genv);
  run_ok({"sh", "-c", "for i in $(seq 1 30); do head -c 1000000 /dev/urandom > " + seed.string() + "/f$i; done"});
  run_ok({"git", "-C", seed.string(), "add", "."}, genv);
  run_ok({"git", "-C", seed.string(), "commit", "-qm", "data"}, genv);
  run_ok({"git", "-C", seed.string(), "push", "-q", repo.string(), "main"}, genv);

  std::printf("SSH proxy vs direct ssh to the same sshd (loopback), %d runs each, medians\n\n", runs);
  std::printf("%-14s %12s %12s %8s\n", "", "direct", "proxy", "ratio");
  auto row = [](const char* what, double direct, double proxied, const char* unit, bool higher_is_better) {
    double ratio = higher_is_better ? proxied / direct : direct / proxied;
    std::printf("%-14s %9.3f %-2s %9.3f %-2s %7.2fx\n", what, direct, unit, proxied, unit, ratio);
  };

  std::vector<double> exec[2], down[2], up[2], clone[2];
  std::string upload(200'000'000, 'x');
  for (int i = 0; i < runs; ++i) {
    for (int p = 0; p < 2; ++p) {
      std::string cfg = paths[p].config.string();
      exec[p].push_back(timed({"ssh", "-F", cfg, kHost, "true"}));
      down[p].push_back(
          200.0 / timed({"sh", "-c", "ssh -F " + cfg + " " + kHost + " 'head -c 200000000 /dev/zero' >/dev/null"}));
      ProgramOptions o;
      o.stdin_data = upload;
      up[p].push_back(200.0 / timed({"ssh", "-F", cfg, kHost, "cat >/dev/null"}, o));
      fs::path work = dir.path() / ("clone" + std::to_string(p));
      fs::remove_all(work);
      ProgramOptions g = genv;
      g.env["GIT_SSH_COMMAND"] = "ssh -F " + cfg;
      clone[p].push_back(timed(
          {"git", "clone", "-q", std::string(paths[p].user) + "@" + kHost + ":" + repo.string(), work.string()}, g));
    }
  }
  row("connect+exec", median(exec[0]) * 1000, median(exec[1]) * 1000, "ms", false);
  row("download", median(down[0]), median(down[1]), "MB/s", true);
  row("upload", median(up[0]), median(up[1]), "MB/s", true);
  row("git clone", median(clone[0]), median(clone[1]), "s", false);
  std::printf("\nratio: proxy relative to direct (1.00x = no cost; below 1 = slower)\n");
  return 0;
}
