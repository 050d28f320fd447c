#include "vfs/fuse_channel.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <cstring>

#include "proto/mount_messages.h"
#include "util/logging.h"

namespace gondolin::vfs {

namespace {
// Replies gathered into one socket write.
constexpr std::size_t kMaxBatch = 64;
}  // namespace

FuseChannel::FuseChannel(boost::asio::io_context& io, UniqueFd socket, std::unique_ptr<FuseServer> server,
                         std::string label)
    : socket_(io, boost::asio::local::stream_protocol(), socket.release()),
      server_(std::move(server)),
      label_(std::move(label)),
      in_(fuse::kMaxRequest + 256 * 1024) {}

void FuseChannel::start() {
  read_more();
}

void FuseChannel::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  socket_.close(ec);
  queued_.clear();
  queued_bytes_ = 0;
}

// The request stream is broken, but ours is not: replies already made go
// out, then the goodbye notice, then the port closes. The VM goes on; the
// mount's files fail with EIO in the guest.
void FuseChannel::fail(const std::string& why) {
  if (closed_ || failing_) return;
  failing_ = true;
  log().warn("vfs {}: {}; the mount is stopped (its files now fail with EIO in the guest)", label_, why);
  fuse_out_header goodbye{};
  goodbye.len = sizeof goodbye;
  goodbye.error = proto::kFuseNotifyMountFailed;
  goodbye.unique = 0;
  std::vector<std::uint8_t> frame(sizeof goodbye);
  std::memcpy(frame.data(), &goodbye, sizeof goodbye);
  queue_reply(std::move(frame));
}

void FuseChannel::read_more() {
  if (closed_ || failing_ || reading_ || queued_bytes_ > kMaxQueuedReplyBytes) return;
  reading_ = true;
  socket_.async_read_some(boost::asio::buffer(in_.data() + filled_, in_.size() - filled_),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                            self->reading_ = false;
                            if (self->closed_) return;
                            // EOF or a reset: QEMU closed the port (the VM is ending, and
                            // says why itself); not the guest's fault.
                            if (ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset)
                              return self->close();
                            if (ec) return self->fail("port read: " + ec.message());
                            self->on_read(n);
                          });
}

void FuseChannel::on_read(std::size_t n) {
  filled_ += n;
  std::size_t pos = 0;
  while (filled_ - pos >= sizeof(fuse_in_header)) {
    std::uint32_t len = 0;
    std::memcpy(&len, in_.data() + pos, sizeof len);
    if (len < sizeof(fuse_in_header) || len > fuse::kMaxRequest)
      return fail("the guest sent a FUSE request of impossible length " + std::to_string(len));
    if (filled_ - pos < len) break;
    std::uint32_t opcode = 0;
    std::memcpy(&opcode, in_.data() + pos + 4, sizeof opcode);
    counts_[opcode < counts_.size() ? opcode : 0]++;
    auto outcome = server_->handle({in_.data() + pos, len});
    if (!outcome.fatal.empty()) return fail(outcome.fatal);
    for (auto& note : outcome.notifications) queue_reply(std::move(note));
    if (outcome.reply) queue_reply(std::move(*outcome.reply));
    pos += len;
    if (closed_) return;
  }
  if (pos > 0) {
    std::memmove(in_.data(), in_.data() + pos, filled_ - pos);
    filled_ -= pos;
  }
  read_more();
}

void FuseChannel::queue_reply(std::vector<std::uint8_t> reply) {
  queued_bytes_ += reply.size();
  queued_.push_back(std::move(reply));
  if (writing_.empty()) write_more();
}

void FuseChannel::write_more() {
  if (closed_ || queued_.empty()) return;
  std::vector<boost::asio::const_buffer> buffers;
  while (!queued_.empty() && writing_.size() < kMaxBatch) {
    writing_.push_back(std::move(queued_.front()));
    queued_.pop_front();
    buffers.emplace_back(boost::asio::buffer(writing_.back()));
  }
  boost::asio::async_write(socket_, buffers, [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
    if (self->closed_) return;
    if (ec) {
      if (self->failing_) return self->close();
      return self->fail("port write: " + ec.message());
    }
    for (const auto& r : self->writing_) self->queued_bytes_ -= r.size();
    self->writing_.clear();
    if (self->failing_ && self->queued_.empty()) return self->close();
    self->write_more();
    self->read_more();  // resumes if back-pressure had paused reading
  });
}

bool FuseChannel::quiet() {
  if (closed_) return true;
  if (filled_ != 0 || !queued_.empty() || !writing_.empty()) return false;
  int unread = 0, unsent = 0;
  int fd = socket_.native_handle();
  if (::ioctl(fd, FIONREAD, &unread) != 0 || ::ioctl(fd, SIOCOUTQ, &unsent) != 0) return false;
  return unread == 0 && unsent == 0;
}

std::string FuseChannel::describe_counts() const {
  std::string out;
  for (std::size_t op = 0; op < counts_.size(); ++op)
    if (counts_[op]) out += (out.empty() ? "" : " ") + std::string(fuse::opcode_name(static_cast<std::uint32_t>(op))) + "=" + std::to_string(counts_[op]);
  return out;
}

}  // namespace gondolin::vfs
