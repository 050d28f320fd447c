#include "session/snapshot_store.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "gondolin/error.h"
#include "util/files.h"
#include "util/logging.h"
#include "util/paths.h"
#include "util/sha256.h"

namespace gondolin::session {
namespace fs = std::filesystem;
namespace {

std::string read_text(const fs::path& p) {
  auto text = read_file_if_exists(p);
  if (!text) throw Error(ErrorKind::Usage, "snapshot " + p.parent_path().string() + " has no readable manifest.json");
  return *text;
}

LoadedSnapshot load_dir(const fs::path& dir, bool verify_state) {
  LoadedSnapshot s{dir, SnapshotManifest::parse(read_text(dir / "manifest.json"), dir.string())};
  fs::path state = dir / s.manifest.state_file;
  std::error_code ec;
  auto size = fs::file_size(state, ec);
  if (ec)
    throw Error(ErrorKind::Usage,
                "snapshot " + dir.string() + " is incomplete: " + state.filename().string() + " is missing");
  if (size != s.manifest.state_size)
    throw Error(ErrorKind::Usage, "snapshot " + dir.string() + " is truncated or damaged: state is " +
                                      std::to_string(size) + " bytes, the manifest says " +
                                      std::to_string(s.manifest.state_size));
  if (!s.manifest.ram_digest.empty()) {
    fs::path ram = dir / SnapshotManifest::kRamFile;
    auto ram_size = fs::file_size(ram, ec);
    if (ec || ram_size != std::uint64_t{s.manifest.memory_mib} << 20)
      throw Error(ErrorKind::Usage, "snapshot " + dir.string() + " is incomplete or damaged: its RAM image " +
                                        SnapshotManifest::kRamFile +
                                        (ec ? " is missing" : " is " + std::to_string(ram_size) + " bytes"));
  }
  if (verify_state && sha256_file_hex(state) != s.manifest.state_sha256)
    throw Error(ErrorKind::Usage, "snapshot " + dir.string() + " is damaged: the state's sha256 does not match");
  return s;
}

bool looks_like_path(const std::string& ref) { return ref.find('/') != std::string::npos || ref.starts_with("."); }

}  // namespace

fs::path snapshots_dir() { return paths::cache_dir() / "snapshots"; }

LoadedSnapshot load_snapshot(const std::string& reference, bool verify_state) {
  if (reference.empty()) throw Error(ErrorKind::Usage, "no snapshot given");
  if (looks_like_path(reference)) return load_dir(reference, verify_state);
  std::vector<fs::path> hits;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(snapshots_dir(), ec))
    if (e.is_directory() && e.path().filename().string().starts_with(reference)) hits.push_back(e.path());
  if (hits.empty()) throw Error(ErrorKind::Usage, "no snapshot '" + reference + "' in " + snapshots_dir().string());
  if (hits.size() > 1) {
    std::string names;
    for (const auto& h : hits) names += (names.empty() ? "" : ", ") + h.filename().string();
    throw Error(ErrorKind::Usage, "snapshot prefix '" + reference + "' is ambiguous: " + names);
  }
  return load_dir(hits.front(), verify_state);
}

SnapshotInfo describe(const LoadedSnapshot& s) {
  SnapshotInfo i;
  i.id = s.manifest.id;
  i.dir = s.dir;
  i.created = s.manifest.created;
  i.image = s.manifest.image_name + " (" + s.manifest.image_id + ")";
  i.image_id = s.manifest.image_id;
  i.state_bytes = s.manifest.state_size + s.manifest.ram_stored_bytes;
  i.save_seconds = s.manifest.save_seconds;
  return i;
}

}  // namespace gondolin::session

namespace gondolin {

std::vector<SnapshotInfo> list_snapshots() {
  std::vector<SnapshotInfo> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(session::snapshots_dir(), ec)) {
    if (!e.is_directory()) continue;
    try {
      out.push_back(session::describe(session::load_snapshot(e.path().string(), false)));
    } catch (const Error& err) {
      log().warn("skipping {}: {}", e.path().string(), err.what());
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.created > b.created; });
  return out;
}

SnapshotInfo find_snapshot(const std::string& reference) {
  return session::describe(session::load_snapshot(reference, false));
}

void remove_snapshot(const std::string& reference) {
  auto s = session::load_snapshot(reference, false);
  std::filesystem::remove_all(s.dir);
}

}  // namespace gondolin
