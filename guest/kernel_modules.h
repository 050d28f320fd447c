#pragma once

#include <string>

namespace gondolin::agent {

// Loads every module listed (one path per line, dependencies first) in
// `list_path`. Missing list: nothing to do. Returns how many were loaded.
int load_kernel_modules(const std::string& list_path);

}  // namespace gondolin::agent
