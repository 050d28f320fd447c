// Configuration a user might copy from somewhere untrusted: policy files
// (--policy JSON) and the SSH egress flags. Each must be accepted or refused
// with gondolin::Error; nothing else may escape, crash or hang.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "config/ssh_git_rules.h"
#include "config/ssh_rules.h"
#include "egress/policy/egress_policy.h"
#include "gondolin/error.h"
#include "gondolin/net_policy.h"

using namespace gondolin;

namespace {

std::string g_policy_path;

void policy_file(std::string_view text) {
  {
    std::ofstream out(g_policy_path, std::ios::trunc | std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  NetworkOptions o;
  try {
    load_network_policy_file(g_policy_path, o);
    egress::EgressPolicy policy(o);  // what Vm::create does with it next
    (void)policy;
  } catch (const Error&) {}
}

void ssh_flags(std::string_view text) {
  try {
    (void)config::parse_ssh_allowed_host(text);
  } catch (const Error&) {}
  try {
    (void)config::parse_ssh_host_assignment("--ssh-user", text);
  } catch (const Error&) {}
  try {
    // A normalized pattern is a fixed point, and never matches a dot segment.
    std::string repo = config::parse_ssh_git_repo(text);
    if (config::parse_ssh_git_repo(repo) != repo) __builtin_trap();
    if (config::git_repo_allowed({repo}, "h.test", "x/../y")) __builtin_trap();
  } catch (const Error&) {}
  (void)config::normalize_host_name(text);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ::setenv("GONDOLIN_FUZZ_SECRET", "value", 1);
  g_policy_path =
      (std::filesystem::temp_directory_path() / ("gondolin-fuzz-policy-" + std::to_string(::getpid()) + ".json"))
          .string();
  std::atexit([] { std::filesystem::remove(g_policy_path); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 0)
    policy_file(in);
  else
    ssh_flags(in);
  return 0;
}
