// What a starting QEMU loads instead of booting, and how the bytes reach it.
//
// Two forms. A zstd-compressed migration stream in a file (a snapshot whose
// state holds the guest's RAM: hundreds of MiB that compress well) is read
// by QEMU through `exec:zstd`, a shell and a decompressor of its own. The
// raw stream of device state only (a boot template's, or a snapshot's whose
// RAM is in a file of its own: some 100 KiB to a few MiB) is held here and
// written by the io thread into a pipe as QEMU drains it (`fd:`): no
// process on the critical path of a start, and no size a pipe must hold.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "util/unique_fd.h"

namespace gondolin::vm {

struct IncomingState {
  std::filesystem::path compressed_file;          // QEMU decompresses it itself
  std::shared_ptr<const std::string> raw_stream;  // or these bytes, fed through a pipe

  bool empty() const { return compressed_file.empty() && !raw_stream; }

  static IncomingState compressed(std::filesystem::path file) { return {std::move(file), nullptr}; }
  // `file` read whole. Throws gondolin::Error (Usage) naming `what` if it
  // is longer than `max_bytes` or, with `sha256_hex` given, if its digest
  // differs: a damaged stream never reaches QEMU.
  static IncomingState raw(const std::filesystem::path& file, std::uint64_t max_bytes, const std::string& sha256_hex,
                           const std::string& what);
};

// The read end of a pipe that `io` fills with `stream` as the reader drains
// it. The write end closes once everything is written, or when the reader
// is gone (EPIPE: the io thread must have SIGPIPE blocked), or with `io`.
// Throws gondolin::Error (Io) if no pipe can be made.
UniqueFd feed_through_pipe(boost::asio::io_context& io, std::shared_ptr<const std::string> stream);

}  // namespace gondolin::vm
