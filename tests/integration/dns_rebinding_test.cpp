// DNS rebinding from a real guest: an allowed name first resolves (on the
// host) to a public address, then, between two requests of the same VM, to
// loopback. The second request must be refused by the host's check on the
// address it is about to dial, and the loopback server must see nothing.
//
// Nothing leaves the machine: gondolin runs in a network namespace of its
// own whose only route is a veth pair into a second namespace that holds the
// "public" server (11.22.33.2, an address our internal-address check treats
// as public). `ip netns exec` bind-mounts /etc/netns/NS/hosts over
// /etc/hosts for gondolin alone, and the test rewrites that file in place to
// rebind the name. Needs root (as CI runs); skipped otherwise.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "test_support.h"

using namespace gondolin::testing;
namespace fs = std::filesystem;

namespace {

constexpr const char* kName = "rebind.example";
constexpr const char* kPublicAddress = "11.22.33.2";

// Two network namespaces joined by a veth pair, removed on destruction.
class RebindNetwork {
 public:
  RebindNetwork() : id_(std::to_string(::getpid())), vm_ns_("gnd-rb-vm-" + id_), srv_ns_("gnd-rb-srv-" + id_) {
    teardown();
    host_sh("ip netns add " + vm_ns_ + " && ip netns add " + srv_ns_);
    host_sh("ip link add rbv" + id_ + " type veth peer name rbs" + id_);
    host_sh("ip link set rbv" + id_ + " netns " + vm_ns_ + " && ip link set rbs" + id_ + " netns " + srv_ns_);
    host_sh(in_vm("ip addr add 11.22.33.1/24 dev rbv" + id_) + " && " + in_vm("ip link set rbv" + id_ + " up") +
            " && " + in_vm("ip link set lo up"));
    host_sh(in_srv("ip addr add 11.22.33.2/24 dev rbs" + id_) + " && " + in_srv("ip link set rbs" + id_ + " up") +
            " && " + in_srv("ip link set lo up"));
    fs::create_directories(etc_dir());
    point_name_at(kPublicAddress);
  }
  ~RebindNetwork() { teardown(); }

  // Rewrites the namespace's hosts file in place: the bind mount follows the inode.
  void point_name_at(const std::string& address) const {
    std::ofstream out(etc_dir() / "hosts", std::ios::trunc);
    out << "127.0.0.1 localhost\n" << address << " " << kName << "\n";
  }
  std::string in_vm(const std::string& cmd) const { return "ip netns exec " + vm_ns_ + " " + cmd; }
  std::string in_srv(const std::string& cmd) const { return "ip netns exec " + srv_ns_ + " " + cmd; }
  const std::string& vm_ns() const { return vm_ns_; }

 private:
  fs::path etc_dir() const { return fs::path("/etc/netns") / vm_ns_; }
  void teardown() const {
    std::error_code ec;
    fs::remove_all(etc_dir(), ec);
    (void)std::system(("ip netns del " + vm_ns_ + " 2>/dev/null; ip netns del " + srv_ns_ + " 2>/dev/null").c_str());
  }

  std::string id_, vm_ns_, srv_ns_;
};

// A python http.server started in a namespace, killed on destruction; its
// request log goes to `log`.
class NamespacedHttpServer {
 public:
  NamespacedHttpServer(const std::string& ns_prefix, const fs::path& root, const std::string& bind,
                       const fs::path& log) {
    pid_ = std::stoi(host_sh(ns_prefix + " sh -c 'cd " + root.string() + " && exec python3 -m http.server 80 --bind " +
                             bind + " >" + log.string() + " 2>&1 & echo $!'"));
    for (int i = 0; i < 100; ++i) {
      if (host_sh(ns_prefix + " sh -c 'ss -ltnH \"sport = :80\" | grep -c " + bind + " || true'").rfind('1', 0) == 0)
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("http.server on " + bind + " did not start");
  }
  ~NamespacedHttpServer() { ::kill(pid_, SIGKILL); }

 private:
  pid_t pid_ = -1;
};

std::vector<nlohmann::json> log_lines(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

TEST(DnsRebinding, AnAllowedNameThatRebindsToLoopbackIsRefusedOnTheSecondRequest) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces";
  if (std::system("command -v ip >/dev/null && command -v ss >/dev/null") != 0) GTEST_SKIP() << "needs iproute2";

  TempDir dir;
  fs::create_directories(dir.path() / "public");
  fs::create_directories(dir.path() / "internal");
  std::ofstream(dir.path() / "public" / "page.txt") << "public-content\n";
  std::ofstream(dir.path() / "internal" / "page.txt") << "internal-secret\n";

  // Containers without CAP_SYS_ADMIN/CAP_NET_ADMIN cannot make namespaces even as root.
  std::optional<RebindNetwork> net_holder;
  try {
    net_holder.emplace();
  } catch (const std::exception& e) {
    GTEST_SKIP() << "cannot create network namespaces here: " << e.what();
  }
  RebindNetwork& net = *net_holder;
  NamespacedHttpServer public_server(net.in_srv(""), dir.path() / "public", kPublicAddress, dir.path() / "public.log");
  NamespacedHttpServer internal_server(net.in_vm(""), dir.path() / "internal", "127.0.0.1",
                                       dir.path() / "internal.log");

  const fs::path egress_log = dir.path() / "egress.jsonl";
  // The guest waits between its two requests; the host rebinds the name in that window.
  const std::string script = std::string("curl -s -m 60 http://") + kName + "/page.txt; sleep 6; " +
                             "curl -s -m 60 -w 'status=%{http_code}\\n' http://" + kName + "/page.txt";
  CliOptions o;
  o.wrapper = {"ip", "netns", "exec", net.vm_ns()};
  auto run = std::async(std::launch::async, [&] {
    return run_gondolin({"exec", "--allow-host", kName, "--egress-log", egress_log.string(), "--", "sh", "-c", script},
                        o);
  });

  // Rebind as soon as the first request has been allowed.
  bool first_seen = false;
  for (int i = 0; i < 1200 && !first_seen; ++i) {
    for (const auto& line : log_lines(egress_log)) first_seen = first_seen || line["decision"] == "allow";
    if (!first_seen) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(first_seen) << "the first request never reached the egress log";
  net.point_name_at("127.0.0.1");

  CliResult r = run.get();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // First request: the public server's page. Second: refused by the host.
  EXPECT_NE(r.out.find("public-content"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("status=403"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("internal-secret"), std::string::npos) << r.out;

  auto lines = log_lines(egress_log);
  ASSERT_EQ(lines.size(), 2u) << slurp(egress_log);
  EXPECT_EQ(lines[0]["decision"], "allow");
  EXPECT_EQ(lines[1]["decision"], "deny");
  EXPECT_EQ(lines[1]["rule"], "internal-address") << lines[1].dump();
  // The host never dialled loopback: the internal server saw no request.
  EXPECT_EQ(slurp(dir.path() / "internal.log").find("GET"), std::string::npos) << slurp(dir.path() / "internal.log");
  EXPECT_NE(slurp(dir.path() / "public.log").find("GET /page.txt"), std::string::npos);
}
