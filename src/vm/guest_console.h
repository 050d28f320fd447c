// The guest's serial console: kernel messages and agent diagnostics. Logged at
// debug level and kept (last lines only) to explain a failed boot.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "util/unique_fd.h"

namespace gondolin::vm {

class GuestConsole : public std::enable_shared_from_this<GuestConsole> {
 public:
  // `oom_kills` counts the guest kernel's out-of-memory kills seen on the
  // console. The guest can print anything there, so it is a hint for
  // messages, never input to a decision.
  GuestConsole(boost::asio::io_context& io, UniqueFd socket, std::shared_ptr<std::atomic<std::uint64_t>> oom_kills);
  void start();
  void close();
  // The last few non-empty lines, joined with " | ".
  std::string tail(std::size_t lines = 6) const;

 private:
  void read_more();
  void take_lines();

  boost::asio::local::stream_protocol::socket socket_;
  std::array<char, 4096> buf_{};
  std::string partial_;
  std::string history_;  // bounded
  std::shared_ptr<std::atomic<std::uint64_t>> oom_kills_;
};

}  // namespace gondolin::vm
