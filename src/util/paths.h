// Where gondolin keeps things on the host.
#pragma once

#include <filesystem>
#include <string>

namespace gondolin::paths {

// $XDG_CACHE_HOME/gondolin, else ~/.cache/gondolin.
std::filesystem::path cache_dir();
// $XDG_CONFIG_HOME/gondolin, else ~/.config/gondolin.
std::filesystem::path config_dir();
// The running executable.
std::filesystem::path self_exe();
// Searches $PATH for an executable; empty if absent. Names with '/' are checked as paths.
std::filesystem::path find_program(const std::string& name);
// A fresh private (0700) directory under $TMPDIR, removed by the caller.
std::filesystem::path make_private_temp_dir(const std::string& prefix);

}  // namespace gondolin::paths
