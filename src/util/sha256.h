#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace gondolin {

std::string sha256_hex(std::string_view data);
// Throws gondolin::Error (Io) if the file cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);

}  // namespace gondolin
