// Whole-file reads and atomic writes, and the timestamp format we record.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace gondolin {

// The file's bytes, or nullopt if it cannot be opened.
std::optional<std::string> read_file_if_exists(const std::filesystem::path& path);
// Throws gondolin::Error (Io) naming the file.
std::string read_file(const std::filesystem::path& path);
// Synced: the bytes reach the disk before the rename (a key that must not
// come back empty after a crash); Cached: as the kernel pleases.
enum class Durability { Cached, Synced };
// Writes to PATH.<pid>.tmp and renames over PATH, so readers never see half
// a file. Throws gondolin::Error (Io) naming the file; no temporary is left.
void write_file_atomic(const std::filesystem::path& path, std::string_view data,
                       std::filesystem::perms perms = std::filesystem::perms::owner_read |
                                                      std::filesystem::perms::owner_write |
                                                      std::filesystem::perms::group_read |
                                                      std::filesystem::perms::others_read,
                       Durability durability = Durability::Cached);

}  // namespace gondolin
