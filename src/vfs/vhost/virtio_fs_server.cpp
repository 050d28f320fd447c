#include "vfs/vhost/virtio_fs_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "gondolin/error.h"
#include "proto/wire.h"
#include "util/logging.h"
#include "vfs/fuse_wire.h"

namespace gondolin::vfs::vhost {

namespace {
constexpr std::uint32_t kHiprioQueue = 0;
// A WRITE's header and fixed part; its data follows.
constexpr std::uint64_t kWriteHead = sizeof(fuse_in_header) + sizeof(fuse_write_in);
// The device state QEMU carries for us: magic, format version, the FUSE session.
constexpr std::uint32_t kStateMagic = 0x53465647;  // "GVFS"
constexpr std::uint32_t kStateVersion = 1;
constexpr std::uint32_t kMaxStateBytes = 512u << 20;

// Tells the CPU this is a spin-wait (saves power, leaves a hyperthread's sibling its share).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
}  // namespace

VirtioFsServer::VirtioFsServer(std::unique_ptr<FuseServer> server, std::string label)
    : server_(std::move(server)),
      label_(std::move(label)),
      backend_(1 + kRequestQueues, fuse::kMaxRequest,
               DeviceStateHooks{[this] { return save_state(); },
                                [this](std::string_view state) { return load_state(state); }, kMaxStateBytes}) {}

std::string VirtioFsServer::save_state() const {
  proto::PayloadWriter w;
  w.u32(kStateMagic);
  w.u32(kStateVersion);
  w.bytes(server_->export_state());
  return std::string(w.data().begin(), w.data().end());
}

std::string VirtioFsServer::load_state(std::string_view state) {
  proto::PayloadReader r(reinterpret_cast<const std::uint8_t*>(state.data()), state.size());
  const std::uint32_t magic = r.u32();
  const std::uint32_t version = r.u32();
  if (!r.ok() || magic != kStateMagic) return "the saved file system state is not gondolin's";
  if (version != kStateVersion)
    return "the saved file system state has format " + std::to_string(version) + "; this gondolin reads " +
           std::to_string(kStateVersion);
  std::string session = r.bytes(kMaxStateBytes);
  if (!r.at_end()) return "the saved file system state is truncated or has trailing bytes";
  if (!server_->import_state(session)) return "the saved FUSE session is damaged";
  return "";
}

std::string VirtioFsServer::state_error() const {
  std::lock_guard lock(state_error_mutex_);
  return state_error_;
}

VirtioFsServer::~VirtioFsServer() { stop(); }

UniqueFd VirtioFsServer::create_socket() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw Error(ErrorKind::Io, std::string("socketpair: ") + std::strerror(errno));
  socket_.reset(sv[0]);
  return UniqueFd(sv[1]);
}

void VirtioFsServer::start(DeadHandler on_dead) {
  on_dead_ = std::move(on_dead);
  stop_event_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_event_) throw Error(ErrorKind::Io, std::string("eventfd: ") + std::strerror(errno));
  thread_ = std::thread([this] { run(); });
}

void VirtioFsServer::stop() {
  if (thread_.joinable()) {
    ::eventfd_write(stop_event_.get(), 1);
    thread_.join();
  }
  socket_.reset();
}

void VirtioFsServer::die(const std::string& why) {
  log().warn("vfs {}: {}; the mount is stopped (its requests go unanswered)", label_, why);
  if (on_dead_) on_dead_(why);
}

void VirtioFsServer::run() {
  std::vector<pollfd> fds;
  std::vector<std::uint32_t> ring_of;                               // fds[2 + k] is ring ring_of[k]'s kick
  std::optional<std::chrono::steady_clock::time_point> spin_until;  // set after serving requests
  for (;;) {
    fds = {{stop_event_.get(), POLLIN, 0}, {socket_.get(), POLLIN, 0}};
    ring_of.clear();
    for (std::uint32_t i = 0; i < backend_.queue_count(); ++i)
      if (backend_.serving(i)) {
        fds.push_back({backend_.kick_fd(i), POLLIN, 0});
        ring_of.push_back(i);
      }
    const bool request_waiting = spin_until && wait_for_request(*spin_until);
    if (::poll(fds.data(), fds.size(), request_waiting ? 0 : -1) < 0) {
      if (errno == EINTR) continue;
      return die(std::string("poll: ") + std::strerror(errno));
    }
    if (fds[0].revents) return;
    if (fds[1].revents) {
      Message message;
      std::string error;
      if (!read_message(socket_.get(), message, error)) {
        if (error.empty()) return log().debug("vfs {}: QEMU closed the vhost-user connection", label_);
        return die(error);
      }
      log().debug("vfs {}: vhost-user {}", label_, request_name(message.header.request));
      const bool state_check = message.header.request == static_cast<std::uint32_t>(Request::CheckDeviceState);
      auto outcome = backend_.handle(std::move(message));
      if (!outcome.error.empty()) return die("vhost-user " + outcome.error);
      state_migratable_ = backend_.state_migration_negotiated();
      if (state_check && !backend_.state_error().empty()) {
        // The VM's start fails with this reason (MountSet::state_error), so it is not warned about twice.
        log().debug("vfs {}: {}", label_, backend_.state_error());
        std::lock_guard lock(state_error_mutex_);
        state_error_ = backend_.state_error();
      }
      if (!outcome.reply.empty() && !write_all(socket_.get(), outcome.reply, error)) return die(error);
    }
    for (std::size_t k = 0; k < ring_of.size(); ++k)
      if (fds[2 + k].revents) {
        eventfd_t ignored;
        ::eventfd_read(fds[2 + k].fd, &ignored);
      }
    // A ring may hold requests from before it was started, so look at every one.
    std::size_t served = 0;
    for (std::uint32_t i = 0; i < backend_.queue_count(); ++i) {
      if (!backend_.serving(i)) continue;
      std::optional<std::size_t> n = drain(i);
      if (!n) return;
      served += *n;
    }
    spin_until.reset();
    if (served > 0) spin_until = std::chrono::steady_clock::now() + kSpinAfterReply;
  }
}

bool VirtioFsServer::wait_for_request(std::chrono::steady_clock::time_point until) const {
  do {
    for (std::uint32_t i = 0; i < backend_.queue_count(); ++i)
      if (backend_.serving(i) && backend_.queue(i).has_available()) return true;
    cpu_relax();
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

std::optional<std::size_t> VirtioFsServer::drain(std::uint32_t index) {
  SplitQueue& queue = backend_.queue(index);
  DescriptorChain chain;
  std::size_t served = 0;
  while (queue.pop(chain)) {
    ++served;
    // The head decides how the rest is taken, and it is a copy: the guest
    // cannot turn a WRITE into something else after we looked.
    std::vector<std::uint8_t> request = chain.gather(kWriteHead);
    std::uint32_t opcode = 0;
    std::uint64_t unique = 0;
    if (request.size() >= sizeof(fuse_in_header)) {
      std::memcpy(&opcode, request.data() + 4, sizeof opcode);
      std::memcpy(&unique, request.data() + 8, sizeof unique);
    }
    counts_[opcode < counts_.size() ? opcode : 0]++;
    if (opcode == FUSE_INIT && server_->initialized()) {
      // Only a guest that reset the device (driver unbound and bound again)
      // starts over; the old session's nodes and handles mean nothing now.
      log().info("vfs {}: the guest reset the device; starting a new FUSE session", label_);
      server_->end_session();
    }
    // File data moves straight between the provider and the guest's pages;
    // everything else is parsed from a copy.
    std::vector<std::span<const char>> write_from;
    std::vector<std::span<char>> read_into;
    if (index != kHiprioQueue && opcode == FUSE_WRITE && chain.readable_bytes > kWriteHead)
      write_from = chain.readable_from(kWriteHead);
    else if (chain.readable_bytes > request.size())
      request = chain.gather();
    if (index != kHiprioQueue && opcode == FUSE_READ) read_into = chain.writable_from(sizeof(fuse_out_header));
    auto outcome = server_->handle(request, {read_into, write_from});
    if (!outcome.fatal.empty()) {
      die(outcome.fatal);
      return std::nullopt;
    }
    std::uint32_t written = 0;
    if (index != kHiprioQueue && outcome.reply) {
      // The driver sized the buffers for the largest valid reply; anything
      // bigger is our bug, and the guest still needs an answer.
      if (outcome.reply->size() > chain.writable_bytes) {
        log().warn("vfs {}: reply of {} bytes for a {}-byte buffer (opcode {})", label_, outcome.reply->size(),
                   chain.writable_bytes, opcode);
        *outcome.reply = fuse::error_reply(unique, EIO);
      }
      written = chain.scatter(*outcome.reply);
      if (outcome.data_in_place > 0 && written == outcome.reply->size())
        written += static_cast<std::uint32_t>(outcome.data_in_place);
    }
    backend_.log_written(chain, written);
    queue.push_used(chain.head, written);
    backend_.notify_guest(index);
  }
  if (queue.broken()) {
    die("ring " + std::to_string(index) + ": " + queue.error());
    return std::nullopt;
  }
  return served;
}

std::string VirtioFsServer::describe_counts() const {
  std::string out;
  for (std::size_t op = 0; op < counts_.size(); ++op)
    if (counts_[op])
      out += (out.empty() ? "" : " ") + std::string(fuse::opcode_name(static_cast<std::uint32_t>(op))) + "=" +
             std::to_string(counts_[op]);
  return out;
}

}  // namespace gondolin::vfs::vhost
