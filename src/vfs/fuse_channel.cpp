#include "vfs/fuse_channel.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <cstring>

#include "proto/mount_messages.h"
#include "util/logging.h"

namespace gondolin::vfs {

FuseChannel::FuseChannel(boost::asio::io_context& io, UniqueFd socket, std::unique_ptr<FuseServer> server,
                         std::string label)
    : StreamChannel(io, std::move(socket)),
      server_(std::move(server)),
      label_(std::move(label)),
      in_(fuse::kMaxRequest + 256 * 1024) {}

// The request stream is broken, but ours is not: replies already made go
// out, then the goodbye notice, then the port closes (on_written). The VM
// goes on; the mount's files fail with EIO in the guest.
void FuseChannel::on_failure(const std::string& why) {
  log().warn("vfs {}: {}; the mount is stopped (its files now fail with EIO in the guest)", label_, why);
  fuse_out_header goodbye{};
  goodbye.len = sizeof goodbye;
  goodbye.error = proto::kFuseNotifyMountFailed;
  goodbye.unique = 0;
  std::vector<std::uint8_t> frame(sizeof goodbye);
  std::memcpy(frame.data(), &goodbye, sizeof goodbye);
  send(std::move(frame));
}

// EOF or a reset: QEMU closed the port (the VM is ending, and says why
// itself); not the guest's fault.
void FuseChannel::on_read_error(const boost::system::error_code& ec) {
  if (ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset) return close();
  report_failure("port read: " + ec.message());
}

void FuseChannel::on_write_error(const boost::system::error_code& ec) {
  if (failed()) return close();
  report_failure("port write: " + ec.message());
}

void FuseChannel::on_written(std::size_t) {
  if (failed() && write_idle()) close();
}

void FuseChannel::on_received(std::size_t n) {
  filled_ += n;
  std::size_t pos = 0;
  while (filled_ - pos >= sizeof(fuse_in_header)) {
    std::uint32_t len = 0;
    std::memcpy(&len, in_.data() + pos, sizeof len);
    if (len < sizeof(fuse_in_header) || len > fuse::kMaxRequest)
      return report_failure("the guest sent a FUSE request of impossible length " + std::to_string(len));
    if (filled_ - pos < len) break;
    std::uint32_t opcode = 0;
    std::memcpy(&opcode, in_.data() + pos + 4, sizeof opcode);
    counts_[opcode < counts_.size() ? opcode : 0]++;
    auto outcome = server_->handle({in_.data() + pos, len});
    if (!outcome.fatal.empty()) return report_failure(outcome.fatal);
    if (outcome.reply) send(std::move(*outcome.reply));
    pos += len;
    if (closed()) return;
  }
  if (pos > 0) {
    std::memmove(in_.data(), in_.data() + pos, filled_ - pos);
    filled_ -= pos;
  }
}

bool FuseChannel::quiet() {
  if (closed()) return true;
  if (filled_ != 0 || !write_idle()) return false;
  int unread = 0, unsent = 0;
  int fd = native_handle();
  if (::ioctl(fd, FIONREAD, &unread) != 0 || ::ioctl(fd, SIOCOUTQ, &unsent) != 0) return false;
  return unread == 0 && unsent == 0;
}

std::string FuseChannel::describe_counts() const {
  std::string out;
  for (std::size_t op = 0; op < counts_.size(); ++op)
    if (counts_[op])
      out += (out.empty() ? "" : " ") + std::string(fuse::opcode_name(static_cast<std::uint32_t>(op))) + "=" +
             std::to_string(counts_[op]);
  return out;
}

}  // namespace gondolin::vfs
