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

namespace gondolin::egress {
namespace {

std::string utc_now() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

std::string to_json_line(const EgressEvent& e) {
  nlohmann::ordered_json j;
  j["time"] = utc_now();
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
