// The SSH git policy's repository names (SshGitPolicy::repos), shared by the
// flag grammar and the proxy that enforces it. A repository is compared as
// git's ssh transport names it, minus a leading '/' and a trailing '/' or
// ".git": "git@host:org/repo.git" and "ssh://git@host/org/repo" are both
// "org/repo". A path with '.' or '..' segments (which a server would resolve
// elsewhere) matches no pattern.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gondolin::config {

std::string normalize_git_repo_path(std::string_view path);

// Why `normalized` is not a usable pattern (empty, '.'/'..'/empty segments,
// '*' other than as the whole last segment, spaces, quotes or control
// characters, still ending in ".git"); empty if it is. Invariant: a usable
// pattern is a fixed point of normalize_git_repo_path.
std::string git_repo_pattern_problem(std::string_view normalized);

// Whether the guest's repository `path` (as the git command names it,
// unquoted) on `host` matches one of `patterns` ("HOST:PATH" or "PATH",
// normalized; a last segment '*' matches one or more segments).
bool git_repo_allowed(const std::vector<std::string>& patterns, std::string_view host, std::string_view path);

}  // namespace gondolin::config
