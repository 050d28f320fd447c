#include "vm/incoming_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>

#include "gondolin/error.h"
#include "util/files.h"
#include "util/sha256.h"

namespace gondolin::vm {

IncomingState IncomingState::raw(const std::filesystem::path& file, std::uint64_t max_bytes,
                                 const std::string& sha256_hex, const std::string& what) {
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(file, ec);
  if (ec) throw Error(ErrorKind::Usage, what + ": cannot read " + file.filename().string() + ": " + ec.message());
  if (size > max_bytes)
    throw Error(ErrorKind::Usage, what + ": its state " + file.filename().string() + " has " + std::to_string(size) +
                                      " bytes, more than the " + std::to_string(max_bytes) + " a state may have");
  auto stream = std::make_shared<std::string>(read_file(file));
  if (stream->size() > max_bytes)  // it grew since
    throw Error(ErrorKind::Usage, what + ": its state " + file.filename().string() + " changed while read");
  if (!sha256_hex.empty() && gondolin::sha256_hex(*stream) != sha256_hex)
    throw Error(ErrorKind::Usage, what + ": the state's sha256 does not match");
  return {{}, std::move(stream)};
}

UniqueFd feed_through_pipe(boost::asio::io_context& io, std::shared_ptr<const std::string> stream) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw Error(ErrorKind::Io, std::string("cannot make a pipe for QEMU's state: ") + std::strerror(errno));
  UniqueFd read_end(fds[0]);
  auto write_end = std::make_shared<boost::asio::posix::stream_descriptor>(io, fds[1]);
  // The handler holds the bytes and the write end until the write ends.
  boost::asio::async_write(*write_end, boost::asio::buffer(*stream),
                           [write_end, stream](const boost::system::error_code&, std::size_t) {
                             boost::system::error_code ignored;
                             write_end->close(ignored);
                           });
  return read_end;
}

}  // namespace gondolin::vm
