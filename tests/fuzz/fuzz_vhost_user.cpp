// vhost-user messages from a hostile front-end, and split rings from a
// hostile guest, into the virtio-fs back-end. Input: [u16 n][n bytes of
// guest RAM image], then messages as [u32 request][u32 flags][u16 size][size
// bytes]. SET_MEM_TABLE gets a 1 MiB memfd holding the RAM image,
// SET_VRING_KICK/CALL/ERR an eventfd, so rings can really start; after each
// message every serving ring is drained (gather + scatter + push_used).
// SET_LOG_BASE gets a 4 KiB memfd as the dirty log and SET_DEVICE_STATE_FD
// the read end of a pipe whose writer is gone, so state transfers (whose
// load hook checks the bytes as the real device does) really run.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "vfs/vhost/vhost_user_backend.h"

using namespace gondolin;
using namespace gondolin::vfs::vhost;

namespace {

constexpr std::size_t kRamBytes = 1u << 20;

std::uint64_t read_le(const std::uint8_t*& p, const std::uint8_t* end, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n && p < end; ++i) v |= static_cast<std::uint64_t>(*p++) << (8 * i);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::uint8_t* p = data;
  const std::uint8_t* end = data + size;
  // (read_le moves p: read first, then bound by what is left.)
  const std::size_t wanted_image = read_le(p, end, 2);
  const std::size_t image = std::min<std::size_t>(wanted_image, static_cast<std::size_t>(end - p));
  UniqueFd ram(::memfd_create("fuzz-ram", MFD_CLOEXEC));
  if (!ram || ::ftruncate(ram.get(), kRamBytes) != 0) return 0;
  if (image && ::pwrite(ram.get(), p, image, 0) != static_cast<ssize_t>(image)) return 0;
  p += image;

  UniqueFd log(::memfd_create("fuzz-log", MFD_CLOEXEC));
  if (!log || ::ftruncate(log.get(), 4096) != 0) return 0;
  DeviceStateHooks hooks{[] { return std::string(100, 's'); },
                         [](std::string_view state) { return state.size() == 100 ? "" : std::string("refused"); },
                         1u << 16};
  VhostUserBackend backend(2, 4096, hooks);
  while (end - p >= 10) {
    Message m;
    m.header.request = static_cast<std::uint32_t>(read_le(p, end, 4));
    m.header.flags = static_cast<std::uint32_t>(read_le(p, end, 4)) & ~kFlagReply;
    const std::size_t wanted = read_le(p, end, 2) % (kMaxPayload + 1);
    const std::size_t len = std::min<std::size_t>(wanted, static_cast<std::size_t>(end - p));
    m.header.size = static_cast<std::uint32_t>(len);
    m.payload.assign(p, p + len);
    p += len;
    switch (static_cast<Request>(m.header.request)) {
      case Request::SetMemTable: m.fds.emplace_back(::dup(ram.get())); break;
      case Request::SetLogBase: m.fds.emplace_back(::dup(log.get())); break;
      case Request::SetDeviceStateFd: {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) return 0;
        ::close(fds[1]);
        m.fds.emplace_back(fds[0]);
        break;
      }
      case Request::SetVringKick:
      case Request::SetVringCall:
      case Request::SetVringErr: m.fds.emplace_back(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)); break;
      default: break;
    }
    auto outcome = backend.handle(std::move(m));
    if (!outcome.error.empty()) break;
    for (std::uint32_t i = 0; i < backend.queue_count(); ++i) {
      if (!backend.serving(i)) continue;
      DescriptorChain chain;
      for (int n = 0; n < 64 && backend.queue(i).pop(chain); ++n) {
        auto request = chain.gather();
        const std::uint32_t written = chain.scatter(request);
        backend.log_written(chain, written);
        backend.queue(i).push_used(chain.head, written);
        backend.notify_guest(i);
      }
    }
  }
  return 0;
}
