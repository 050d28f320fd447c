#include "control/exec_request.h"

#include "gondolin/error.h"

namespace gondolin::control {
namespace {

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

void check_env_entry(const std::string& key, const std::string& value) {
  if (key.empty() || key.find('=') != std::string::npos || has_nul(key))
    throw Error(ErrorKind::Usage, "invalid environment variable name '" + key + "'");
  if (has_nul(value)) throw Error(ErrorKind::Usage, "environment variable " + key + " contains a NUL byte");
}

void check_size(const proto::ExecStart& req) {
  proto::PayloadWriter size_check;
  req.encode(size_check);
  if (size_check.data().size() > proto::kMaxPayload || req.argv.size() > proto::kMaxArgs ||
      req.env.size() > proto::kMaxEnv)
    throw Error(ErrorKind::Usage, "command line and environment are too large (limit 1 MiB)");
}

}  // namespace

proto::ExecStart exec_start_for(const Command& command, const ExecOptions& o) {
  if (command.args().empty() || command.args().front().empty()) throw Error(ErrorKind::Usage, "no command given");
  proto::ExecStart req;
  req.argv = command.args();
  for (const auto& a : req.argv)
    if (has_nul(a)) throw Error(ErrorKind::Usage, "command arguments cannot contain NUL bytes");
  for (const auto& [key, value] : o.env) {
    check_env_entry(key, value);
    req.env.push_back(key + "=" + value);
  }
  if (has_nul(o.cwd)) throw Error(ErrorKind::Usage, "working directory contains a NUL byte");
  req.cwd = o.cwd;
  req.flags = (o.pty ? proto::kExecFlagPty : 0) | (o.stdin || !o.stdin_data.empty() ? proto::kExecFlagStdin : 0);
  if (o.user) req.run_as(o.user->uid, o.user->gid);
  req.rows = o.rows;
  req.cols = o.cols;
  check_size(req);
  return req;
}

std::pair<Command, ExecOptions> exec_options_from(const proto::ExecStart& request) {
  ExecOptions o;
  for (const auto& kv : request.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) throw Error(ErrorKind::Usage, "environment entry without '=': '" + kv + "'");
    o.env.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  o.cwd = request.cwd;
  if (request.flags & proto::kExecFlagUser) o.user = GuestUser{request.uid, request.gid};
  o.pty = (request.flags & proto::kExecFlagPty) != 0;
  o.stdin = (request.flags & proto::kExecFlagStdin) != 0;
  o.rows = request.rows;
  o.cols = request.cols;
  return {Command::argv(request.argv), std::move(o)};
}

}  // namespace gondolin::control
