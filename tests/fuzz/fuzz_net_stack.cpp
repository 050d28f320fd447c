// Arbitrary Ethernet frames from a hostile guest into the whole NetStack, on
// the same link QEMU would use (4-byte length + frame): the frame filter, ARP,
// DHCP, ICMP, DNS and TCP through real libslirp, the flow table and the
// dispatcher, with egress refusing every flow. One stack lives across inputs,
// as one would across a guest's life, so its caps and tables are exercised.
// Input: frames as [u16 length][frame]; a frame whose first bytes are not the
// guest's MAC pair is sent as is, so spoofed frames stay reachable.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "net/egress_factory.h"
#include "net/net_stack.h"
#include "util/logging.h"

using namespace gondolin;
using namespace gondolin::net;

namespace {

struct Harness {
  boost::asio::io_context io;
  std::unique_ptr<NetStack> stack;
  UniqueFd qemu;

  Harness() {
    stack = std::make_unique<NetStack>(io, NetworkOptions{}, refuse_all_egress());
    qemu = stack->take_qemu_end();
    ::fcntl(qemu.get(), F_SETFL, ::fcntl(qemu.get(), F_GETFL) | O_NONBLOCK);
    stack->start();
  }

  // What the stack sends back is read and thrown away, as a guest would.
  void drain_to_guest() {
    std::uint8_t buf[65536];
    while (::read(qemu.get(), buf, sizeof buf) > 0) {}
  }

  void settle() {
    for (int i = 0; i < 64; ++i) {
      io.restart();
      std::size_t ran = io.poll();
      drain_to_guest();
      if (ran == 0) break;
    }
  }

  void send(const std::vector<std::uint8_t>& frame) {
    std::vector<std::uint8_t> wire(4 + frame.size());
    const auto n = static_cast<std::uint32_t>(frame.size());
    wire[0] = static_cast<std::uint8_t>(n >> 24);
    wire[1] = static_cast<std::uint8_t>(n >> 16);
    wire[2] = static_cast<std::uint8_t>(n >> 8);
    wire[3] = static_cast<std::uint8_t>(n);
    std::copy(frame.begin(), frame.end(), wire.begin() + 4);
    std::size_t off = 0;
    while (off < wire.size()) {
      ssize_t w = ::write(qemu.get(), wire.data() + off, wire.size() - off);
      if (w > 0) {
        off += static_cast<std::size_t>(w);
        continue;
      }
      if (w < 0 && errno != EAGAIN && errno != EINTR) return;
      settle();
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The logger first, so it outlives the stack's destructor (which logs) at exit.
  static spdlog::logger& logger = gondolin::log();
  (void)logger;
  static Harness h;
  std::size_t off = 0;
  while (off + 2 <= size) {
    std::size_t len = static_cast<std::size_t>(data[off]) << 8 | data[off + 1];
    off += 2;
    len = std::min(len, size - off);
    h.send(std::vector<std::uint8_t>(data + off, data + off + len));
    off += len;
  }
  h.settle();
  return 0;
}
