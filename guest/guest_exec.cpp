#include "guest_exec.h"

#include <map>

namespace gondolin::agent {

std::vector<std::string> build_environment(const std::vector<std::string>& requested, bool pty) {
  std::map<std::string, std::string> env{
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"HOME", "/root"},
      {"USER", "root"},
      {"LOGNAME", "root"},
      {"SHELL", "/bin/bash"},
      {"LANG", "C.UTF-8"},
  };
  if (pty) env["TERM"] = "xterm-256color";
  for (const auto& kv : requested) {
    auto eq = kv.find('=');
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

}  // namespace gondolin::agent
