#include "vfs/path_glob.h"

#include <fnmatch.h>

#include "gondolin/error.h"

namespace gondolin::vfs {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos < path.size()) {
    std::size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    if (end > pos) out.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

PathGlob::PathGlob(std::string_view pattern) : text_(pattern) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::Usage, "invalid hide glob '" + std::string(pattern) + "': " + why);
  };
  if (pattern.empty()) throw bad("empty");
  if (pattern.front() == '/') throw bad("must be relative to the mount");
  if (pattern.find('\0') != std::string_view::npos) throw bad("contains a NUL byte");
  for (auto part : split_path(pattern)) {
    if (part == "." || part == "..") throw bad("'.' and '..' are not allowed");
    if (part.find("**") != std::string_view::npos && part != "**") throw bad("'**' must be a whole component");
    if (!parts_.empty() && part == "**" && parts_.back() == "**") continue;
    parts_.emplace_back(part);
  }
  if (parts_.empty()) throw bad("no components");
  if (parts_.size() > 64) throw bad("too many components");
}

bool PathGlob::component_matches(const std::string& part, std::string_view name) {
  std::string n(name);
  return ::fnmatch(part.c_str(), n.c_str(), 0) == 0;
}

// state[i]: the first i pattern parts match the components seen so far.
std::vector<bool> PathGlob::advance(const std::vector<bool>& state, std::string_view name) const {
  std::vector<bool> next(parts_.size() + 1, false);
  for (std::size_t i = 0; i < parts_.size(); ++i) {
    if (!state[i]) continue;
    if (parts_[i] == "**")
      next[i] = true;  // "**" swallows this component and stays
    else if (component_matches(parts_[i], name))
      next[i + 1] = true;
  }
  // "**" may also match nothing: reaching it means reaching past it.
  for (std::size_t i = 0; i < parts_.size(); ++i)
    if (next[i] && parts_[i] == "**") next[i + 1] = true;
  return next;
}

std::vector<bool> PathGlob::progress(std::string_view dir) const {
  std::vector<bool> state(parts_.size() + 1, false);
  state[0] = true;
  for (std::size_t i = 0; i < parts_.size() && state[i] && parts_[i] == "**"; ++i) state[i + 1] = true;
  for (auto name : split_path(dir)) state = advance(state, name);
  return state;
}

bool PathGlob::hides(std::string_view path) const {
  std::vector<bool> state = progress("");
  for (auto name : split_path(path)) {
    state = advance(state, name);
    if (complete(state)) return true;
  }
  return false;
}

bool PathGlob::matches(std::string_view path) const {
  if (split_path(path).empty()) return false;  // the mount root is never hidden
  return complete(progress(path));
}

}  // namespace gondolin::vfs
