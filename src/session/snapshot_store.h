// Snapshot directories: $XDG_CACHE_HOME/gondolin/snapshots/<id>/ holding
// manifest.json and QEMU's migration stream (state.zst, or state: see SnapshotManifest).
#pragma once

#include <filesystem>
#include <string>

#include "gondolin/session.h"
#include "session/snapshot_manifest.h"

namespace gondolin::session {

std::filesystem::path snapshots_dir();

struct LoadedSnapshot {
  std::filesystem::path dir;
  SnapshotManifest manifest;
};

// Resolves an id, unique prefix or directory and checks the state file is
// whole (size and sha256). Throws gondolin::Error naming what is wrong.
LoadedSnapshot load_snapshot(const std::string& reference, bool verify_state = true);

SnapshotInfo describe(const LoadedSnapshot& s);

}  // namespace gondolin::session
