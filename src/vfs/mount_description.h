// Mounts as a snapshot records them: guest path, mount options and a
// description of the provider (Provider::describe), from which a resume
// rebuilds the same mounts in the same order (the same virtio-serial ports).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gondolin/vfs.h"

namespace gondolin::vfs {

// A JSON array. Throws gondolin::Error (Usage) naming the first mount whose
// provider cannot be rebuilt (an in-memory or user-written provider).
std::string describe_mounts(const std::vector<Mount>& mounts);

// The inverse. Host directories are opened again by their recorded path; one
// that is gone is an Error (Usage) naming it. `origin` names the snapshot in
// messages.
std::vector<Mount> mounts_from_description(const std::string& json, const std::string& origin);

// A concrete transport's name in snapshots and templates: "serial" or
// "virtiofs"; and back (nullopt for any other name).
const char* transport_name(FsTransport transport);
std::optional<FsTransport> transport_from_name(std::string_view name);

}  // namespace gondolin::vfs
