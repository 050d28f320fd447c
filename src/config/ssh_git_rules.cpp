#include "config/ssh_git_rules.h"

namespace gondolin::config {
namespace {

// Calls f(segment) for each '/'-separated segment; stops early if f returns false.
template <typename F>
bool each_segment(std::string_view path, F f) {
  std::size_t start = 0;
  for (;;) {
    std::size_t end = path.find('/', start);
    if (!f(path.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start))) return false;
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

bool plain_segments(std::string_view path) {
  return each_segment(path, [](std::string_view seg) { return !seg.empty() && seg != "." && seg != ".."; });
}

bool matches(std::string_view pattern, std::string_view path) {
  if (pattern.ends_with("/*")) {
    std::string_view dir = pattern.substr(0, pattern.size() - 1);  // keeps the '/'
    return path.size() > dir.size() && path.starts_with(dir);
  }
  return pattern == "*" ? !path.empty() : pattern == path;
}

}  // namespace

std::string normalize_git_repo_path(std::string_view path) {
  while (path.starts_with('/')) path.remove_prefix(1);
  while (path.ends_with('/')) path.remove_suffix(1);
  if (path.ends_with(".git")) path.remove_suffix(4);
  while (path.ends_with('/')) path.remove_suffix(1);
  return std::string(path);
}

std::string git_repo_pattern_problem(std::string_view p) {
  if (p.empty()) return "the repository path is empty";
  // Normalizing strips one ".git"; a pattern left ending in it would lose that
  // too when read back (a snapshot's policy), naming another repository.
  if (p.ends_with(".git")) return "a repository path may end in \".git\" only once";
  for (char c : p) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '\'' || c == '"' || c == '\\') return "repository paths are plain path text";
  }
  if (!plain_segments(p)) return "empty, '.' or '..' path segments are not allowed";
  std::size_t star = p.find('*');
  if (star != std::string_view::npos && !(star + 1 == p.size() && (star == 0 || p[star - 1] == '/')))
    return "'*' may only be the whole last segment (org/*)";
  return {};
}

bool git_repo_allowed(const std::vector<std::string>& patterns, std::string_view host, std::string_view path) {
  const std::string repo = normalize_git_repo_path(path);
  if (repo.empty() || !plain_segments(repo)) return false;
  for (std::string_view p : patterns) {
    if (auto colon = p.find(':'); colon != std::string_view::npos) {
      if (p.substr(0, colon) != host) continue;
      p.remove_prefix(colon + 1);
    }
    if (matches(p, repo)) return true;
  }
  return false;
}

}  // namespace gondolin::config
