// Copies a large, mostly empty file (a VM's disk) cheaply: a reflink where
// the host file system shares extents (btrfs, XFS), else only its data
// ranges (SEEK_DATA/SEEK_HOLE), so holes stay holes.
#pragma once

#include <sys/types.h>

#include <filesystem>

namespace gondolin {

// Creates `to` (it must not exist) with `mode`, the same size and contents as
// `from`. Returns true if it is a reflink (no data copied). Throws
// gondolin::Error (Io) naming the file; a half-written `to` is removed.
bool copy_sparse_file(const std::filesystem::path& from, const std::filesystem::path& to, unsigned mode = 0600);

// Copies every data range of `in` (`size` bytes long) to the same offsets of
// `out`, which already has that size; holes stay holes. In the kernel
// (copy_file_range), or with sendfile where the two are on different file
// systems (a memfd). Returns false with errno set.
bool copy_data_ranges(int in, int out, off_t size);

}  // namespace gondolin
