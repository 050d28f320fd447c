#include "session/session_registry.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gondolin/error.h"
#include "util/files.h"
#include "util/logging.h"
#include "util/paths.h"

namespace gondolin::session {
namespace fs = std::filesystem;
namespace {

using nlohmann::json;

double age_of(const std::string& rfc3339) {
  std::tm tm{};
  if (!::strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm)) return 0;
  return std::difftime(std::time(nullptr), ::timegm(&tm));
}

bool entry_is_live(const json& doc) {
  pid_t pid = doc.value("pid", 0);
  if (pid <= 0) return false;
  unsigned long long start = doc.value("pid_start_time", 0ull);
  return process_start_time(pid) == start && start != 0;
}

SessionInfo info_from(const json& doc) {
  SessionInfo i;
  i.id = doc.value("id", "");
  i.pid = doc.value("pid", 0);
  i.image = doc.value("image", "");
  i.image_id = doc.value("image_id", "");
  // Entries written before image_id existed carry it as "name:tag (id)".
  if (auto open = i.image.rfind(" ("); i.image_id.empty() && open != std::string::npos && i.image.back() == ')')
    i.image_id = i.image.substr(open + 2, i.image.size() - open - 3);
  i.started = doc.value("started", "");
  i.age_seconds = age_of(i.started);
  i.command = doc.value("command", "");
  i.accel = doc.value("accel", "");
  i.state = "running";
  i.mounts = doc.value("mounts", std::vector<std::string>{});
  i.network = doc.value("network", "");
  i.socket_path = doc.value("socket", "");
  return i;
}

}  // namespace

fs::path sessions_dir() {
  fs::path dir = paths::cache_dir() / "sessions";
  std::error_code ec;
  fs::create_directories(dir, ec);
  ::chmod(dir.c_str(), 0700);  // other users must not even see the sockets
  return dir;
}

std::string new_session_id() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) throw Error(ErrorKind::Internal, "no randomness for a session id");
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  char out[37];
  std::snprintf(out, sizeof out, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return out;
}

unsigned long long process_start_time(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return 0;
  auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  // Fields after the command: state is field 3; starttime is field 22.
  for (int i = 3; i < 22 && rest >> field; ++i) {}
  unsigned long long start = 0;
  rest >> start;
  return start;
}

SessionRecord::SessionRecord(SessionInfo info) : info_(std::move(info)) {
  json doc{{"id", info_.id},
           {"pid", ::getpid()},
           {"pid_start_time", process_start_time(::getpid())},
           {"image", info_.image},
           {"image_id", info_.image_id},
           {"started", info_.started},
           {"command", info_.command},
           {"accel", info_.accel},
           {"mounts", info_.mounts},
           {"network", info_.network},
           {"socket", info_.socket_path.string()}};
  fs::path file = sessions_dir() / (info_.id + ".json");
  write_file_atomic(file, doc.dump(2) + "\n", fs::perms::owner_read | fs::perms::owner_write);
}

SessionRecord::~SessionRecord() {
  std::error_code ec;
  fs::remove(sessions_dir() / (info_.id + ".json"), ec);
}

}  // namespace gondolin::session

namespace gondolin {

std::vector<SessionInfo> Session::list() {
  std::vector<SessionInfo> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(session::sessions_dir(), ec)) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path());
    auto doc = nlohmann::json::parse(in, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !session::entry_is_live(doc)) {
      // The owner died without cleaning up: forget the entry and its socket.
      std::error_code ignored;
      std::filesystem::remove(e.path(), ignored);
      std::filesystem::path sock = e.path();
      sock.replace_extension(".sock");
      std::filesystem::remove(sock, ignored);
      continue;
    }
    out.push_back(session::info_from(doc));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.started > b.started; });
  return out;
}

SessionInfo Session::find(const std::string& id_or_prefix) {
  if (id_or_prefix.empty()) throw Error(ErrorKind::Usage, "no session id given");
  std::vector<SessionInfo> hits;
  for (auto& s : list())
    if (s.id.starts_with(id_or_prefix)) hits.push_back(std::move(s));
  if (hits.empty()) throw Error(ErrorKind::Usage, "no running session '" + id_or_prefix + "' (see gondolin list)");
  if (hits.size() > 1) {
    std::string names;
    for (const auto& h : hits) names += (names.empty() ? "" : ", ") + h.id.substr(0, 12) + " (" + h.command + ")";
    throw Error(ErrorKind::Usage, "session prefix '" + id_or_prefix + "' is ambiguous: " + names);
  }
  return hits.front();
}

}  // namespace gondolin
