// Globs over '/'-separated relative paths: '*', '?' and [...] within one
// component (a leading '.' is not special: "*" matches ".env"), "**" for any
// number of components.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gondolin::vfs {

class PathGlob {
 public:
  // Throws gondolin::Error (Usage) naming the problem.
  explicit PathGlob(std::string_view pattern);

  const std::string& text() const { return text_; }
  bool matches(std::string_view path) const;
  // True if the path or any directory above it matches (the mount root never does).
  bool hides(std::string_view path) const;

  // The glob's progress after a path prefix: which pattern positions its
  // components can reach. Two directories with equal progress have equal
  // answers for every path below them.
  std::vector<bool> progress(std::string_view dir) const;
  // True if the progress means the prefix itself matched.
  bool complete(const std::vector<bool>& progress) const { return progress.back(); }

 private:
  static bool component_matches(const std::string& part, std::string_view name);
  std::vector<bool> advance(const std::vector<bool>& state, std::string_view name) const;

  std::string text_;
  std::vector<std::string> parts_;
};

// Splits "a/b/c" into its components.
std::vector<std::string_view> split_path(std::string_view path);

}  // namespace gondolin::vfs
