#include "egress/egress_log.h"

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

std::string to_json_line(const EgressEvent& e) {
  nlohmann::ordered_json j;
  j["time"] = now_rfc3339_ms();
  j["flow"] = e.flow;
  j["kind"] = e.kind;
  if (!e.event.empty()) j["event"] = e.event;
  j["host"] = e.host;
  if (e.port != 0) j["port"] = e.port;
  if (!e.method.empty()) j["method"] = e.method;
  if (!e.path.empty()) j["path"] = e.path;
  j["decision"] = e.decision;
  j["rule"] = e.rule;
  j["secrets"] = e.secrets;
  if (e.status != 0) j["status"] = e.status;
  if (!e.reason.empty()) j["reason"] = e.reason;
  if (!e.upstream.empty()) j["upstream"] = e.upstream;
  if (!e.peer.empty()) j["peer"] = e.peer;
  if (e.bytes_from_guest) j["bytes_from_guest"] = *e.bytes_from_guest;
  if (e.bytes_to_guest) j["bytes_to_guest"] = *e.bytes_to_guest;
  // Guest-controlled strings may hold any bytes: never fail on bad UTF-8.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

EgressLog::EgressLog(const std::string& path) {
  if (path.empty()) return;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(ErrorKind::Io, "cannot open egress log " + path + ": " + std::strerror(errno));
  file_.reset(::fdopen(fd, "a"));
  if (!file_) {
    ::close(fd);
    throw Error(ErrorKind::Io, "cannot open egress log " + path);
  }
}

void EgressLog::record(const EgressEvent& event) { write_line(to_json_line(event)); }

void EgressLog::write_line(std::string line) {
  log().debug("egress: {}", line);
  std::lock_guard lock(mutex_);
  if (!file_) return;
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), file_.get());
  std::fflush(file_.get());
}

}  // namespace gondolin::egress
