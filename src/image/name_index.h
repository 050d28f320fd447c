// Which build a name:tag means, recorded in the store when a build, tag or
// import gives it one (`.names/` beside the image directories).
//
// Without it a name meant its newest build by the manifests' `created`, so a
// `gondolin build` that found its own earlier build up to date reported an id
// the name did not resolve to whenever another work directory had built the
// name since. A manifest's `created` cannot change (it is part of the id that
// snapshots name), so the pointer lives outside the image directories.
//
// Invariants: one file per name:tag, named by a hash of it (a name never
// becomes a path), holding "ID\nNAME:TAG\n", written whole by rename. A
// pointer to a build that is gone, or that says another name, counts as
// none; ImageStore then falls back to the newest build.
#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <string>

namespace gondolin::image {

// The id name:tag points at, if a pointer for it exists.
std::optional<std::string> named_id(const std::filesystem::path& store_root, const std::string& name_tag);
// Points name:tag at `id` (replacing what it pointed at). Never throws: a
// store this user cannot write keeps the newest-build rule.
void point_name(const std::filesystem::path& store_root, const std::string& name_tag, const std::string& id);
// Removes name:tag's pointer if it points at `id`.
void drop_name(const std::filesystem::path& store_root, const std::string& name_tag, const std::string& id);
// Every id some pointer names (kept by `image prune`).
std::set<std::string> named_ids(const std::filesystem::path& store_root);

}  // namespace gondolin::image
