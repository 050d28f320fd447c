#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace gondolin {

std::string sha256_hex(std::string_view data);
// Only the digits sha256_hex writes (0-9, a-f); true for "" too.
bool is_lower_hex(std::string_view s);
// Throws gondolin::Error (Io) if the file cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace gondolin
