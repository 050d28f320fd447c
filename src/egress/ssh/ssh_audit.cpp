#include "egress/ssh/ssh_audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "gondolin/error.h"
#include "util/logging.h"
#include "util/utc_time.h"

namespace gondolin::egress {

std::string to_json_line(const SshAuditEvent& e) {
  nlohmann::ordered_json j;
  j["time"] = now_rfc3339_ms();
  j["flow"] = e.flow;
  j["kind"] = "ssh";
  j["host"] = e.host;
  if (e.port != 0) j["port"] = e.port;
  if (!e.user.empty()) j["user"] = e.user;
  if (!e.command.empty()) j["command"] = e.command;
  j["decision"] = e.decision;
  if (!e.reason.empty()) j["reason"] = e.reason;
  if (!e.upstream.empty()) j["upstream"] = e.upstream;
  // Guest-chosen strings may hold any bytes: never fail on bad UTF-8.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

SshAuditFile::SshAuditFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(ErrorKind::Io, "cannot open SSH audit log " + path + ": " + std::strerror(errno));
  file_.reset(::fdopen(fd, "a"));
  if (!file_) {
    ::close(fd);
    throw Error(ErrorKind::Io, "cannot open SSH audit log " + path);
  }
}

void SshAuditFile::record(const SshAuditEvent& event) {
  std::string line = to_json_line(event);
  log().debug("ssh: {}", line);
  line += '\n';
  std::lock_guard lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), file_.get());
  std::fflush(file_.get());
}

}  // namespace gondolin::egress
