// The guest's side of a NetStack's link, driven by hand: frames go in as a
// guest would send them and come back out for inspection. Runs the stack's
// io_context on the test's own thread while it waits.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "net/bytes.h"
#include "net/ethernet.h"
#include "net/ipv4_packet.h"
#include "net/tcp_segment.h"
#include "util/unique_fd.h"

namespace gondolin::net::test {

// A frame the stack sent, parsed as far as it goes.
struct SeenFrame {
  std::vector<std::uint8_t> bytes;
  std::optional<EthernetFrame> eth;
  std::optional<Ipv4Packet> ip;
  std::optional<TcpSegment> tcp;
  std::optional<UdpDatagram> udp;
  std::string tcp_payload;
};

class FakeGuest {
 public:
  FakeGuest(boost::asio::io_context& io, UniqueFd link) : io_(io), fd_(std::move(link)) {}

  void send(const std::vector<std::uint8_t>& frame) {
    std::vector<std::uint8_t> out(4);
    const auto n = static_cast<std::uint32_t>(frame.size());
    out[0] = static_cast<std::uint8_t>(n >> 24);
    out[1] = static_cast<std::uint8_t>(n >> 16);
    out[2] = static_cast<std::uint8_t>(n >> 8);
    out[3] = static_cast<std::uint8_t>(n);
    out.insert(out.end(), frame.begin(), frame.end());
    std::size_t off = 0;
    while (off < out.size()) {
      ssize_t w = ::write(fd_.get(), out.data() + off, out.size() - off);
      if (w < 0) throw std::runtime_error("fake guest: write failed");
      off += static_cast<std::size_t>(w);
    }
    io_.poll();
  }

  // Runs the stack until a frame matching `want` arrives (others are kept
  // for later calls), or the timeout passes.
  std::optional<SeenFrame> wait_for(const std::function<bool(const SeenFrame&)>& want,
                                    std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (auto it = seen_.begin(); it != seen_.end(); ++it) {
        if (want(*it)) {
          SeenFrame f = std::move(*it);
          seen_.erase(it);
          return f;
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      io_.run_for(std::chrono::milliseconds(2));
      read_available();
    }
  }

  // Everything that arrives within `d`.
  std::vector<SeenFrame> collect(std::chrono::milliseconds d) {
    auto deadline = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < deadline) {
      io_.run_for(std::chrono::milliseconds(2));
      read_available();
    }
    std::vector<SeenFrame> out(std::make_move_iterator(seen_.begin()), std::make_move_iterator(seen_.end()));
    seen_.clear();
    return out;
  }

 private:
  void read_available() {
    for (;;) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) return;
      std::uint8_t buf[65536];
      ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n <= 0) return;
      pending_.insert(pending_.end(), buf, buf + n);
      while (pending_.size() >= 4) {
        std::size_t len = load_u32(pending_.data());
        if (pending_.size() < 4 + len) break;
        SeenFrame f;
        f.bytes.assign(pending_.begin() + 4, pending_.begin() + 4 + static_cast<long>(len));
        pending_.erase(pending_.begin(), pending_.begin() + 4 + static_cast<long>(len));
        parse(f);
        seen_.push_back(std::move(f));
      }
    }
  }

  static void parse(SeenFrame& f) {
    auto eth = parse_ethernet(f.bytes);
    if (!eth) return;
    f.eth = eth.value();
    if (eth->ether_type != kEtherTypeIpv4) return;
    auto ip = parse_ipv4(eth->payload);
    if (!ip) return;
    f.ip = ip.value();
    if (ip->protocol == kIpProtoTcp) {
      auto t = parse_tcp(ip.value(), true);
      if (t) {
        f.tcp = t.value();
        auto p = ip->payload.last(t->payload_length);
        f.tcp_payload.assign(p.begin(), p.end());
      }
    } else if (ip->protocol == kIpProtoUdp) {
      auto u = parse_udp(ip.value());
      if (u) f.udp = u.value();
    }
  }

  boost::asio::io_context& io_;
  UniqueFd fd_;
  std::vector<std::uint8_t> pending_;
  std::deque<SeenFrame> seen_;
};

}  // namespace gondolin::net::test
