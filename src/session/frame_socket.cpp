#include "session/frame_socket.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "gondolin/error.h"

namespace gondolin::session {

std::optional<proto::FrameDecoder::Frame> FrameSocket::read() {
  for (;;) {
    while (pending_offset_ < pending_.size()) {
      pending_offset_ += decoder_.feed(pending_.data() + pending_offset_, pending_.size() - pending_offset_);
      if (decoder_.error() != proto::HeaderError::None)
        throw Error(ErrorKind::Guest,
                    std::string("malformed frame on the session socket: ") + proto::describe(decoder_.error()));
      if (decoder_.has_frame()) return decoder_.take();
    }
    pending_.resize(64 * 1024);
    pending_offset_ = 0;
    ssize_t n = ::read(fd_.get(), pending_.data(), pending_.size());
    if (n < 0 && errno == EINTR) {
      pending_.clear();
      continue;
    }
    if (n <= 0) {
      pending_.clear();
      return std::nullopt;
    }
    pending_.resize(static_cast<std::size_t>(n));
  }
}

bool FrameSocket::write(const std::vector<std::uint8_t>& frame) {
  std::lock_guard lock(write_mutex_);
  std::size_t off = 0;
  while (off < frame.size()) {
    ssize_t n = ::send(fd_.get(), frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

void FrameSocket::shutdown() { ::shutdown(fd_.get(), SHUT_RDWR); }

UniqueFd connect_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw Error(ErrorKind::Usage, "socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw Error(ErrorKind::Io, "cannot connect to session socket " + path + ": " + std::strerror(errno));
  return fd;
}

}  // namespace gondolin::session
