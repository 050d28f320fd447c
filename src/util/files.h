// Whole-file reads and atomic writes, and the timestamp format we record.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "util/unique_fd.h"

namespace gondolin {

// The file's bytes, or nullopt if it cannot be opened.
std::optional<std::string> read_file_if_exists(const std::filesystem::path& path);
// Throws gondolin::Error (Io) naming the file.
std::string read_file(const std::filesystem::path& path);
// Writes to PATH.<pid>.tmp and renames over PATH, so readers never see half
// a file. Throws gondolin::Error (Io) naming the file; no temporary is left.
void write_file_atomic(const std::filesystem::path& path, std::string_view data,
                       std::filesystem::perms perms = std::filesystem::perms::owner_read |
                                                      std::filesystem::perms::owner_write |
                                                      std::filesystem::perms::group_read |
                                                      std::filesystem::perms::others_read);

// The read end of a pipe that already holds all of `path` (at most
// `max_bytes`, which must fit a pipe: /proc/sys/fs/pipe-max-size, 1 MiB by
// default) and whose write end is closed, so a reader gets the file and then
// EOF without a process or thread feeding it. Throws gondolin::Error (Io)
// naming the file.
UniqueFd pipe_holding_file(const std::filesystem::path& path, std::size_t max_bytes);

}  // namespace gondolin
