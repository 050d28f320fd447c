// One transfer of a back-end's internal state over the pipe the front-end
// hands us with SET_DEVICE_STATE_FD (VHOST_USER_PROTOCOL_F_DEVICE_STATE).
//
// The protocol answers SET_DEVICE_STATE_FD first and moves the bytes after:
// QEMU reads (save) or writes (load) the pipe until EOF while the back-end
// keeps serving its socket, and only then sends CHECK_DEVICE_STATE. So the
// bytes move on a thread of their own, and finish() (called for CHECK)
// joins it. A load is bounded: a front-end that sends more than max_bytes
// gets a failed transfer, never an unbounded buffer.
#pragma once

#include <cstddef>
#include <string>
#include <thread>

#include "util/unique_fd.h"

namespace gondolin::vfs::vhost {

class StateTransfer {
 public:
  enum class Direction { Save, Load };

  StateTransfer() = default;
  StateTransfer(const StateTransfer&) = delete;
  StateTransfer& operator=(const StateTransfer&) = delete;
  ~StateTransfer() { finish(); }

  // Writes `state` to `pipe` and closes it.
  void start_save(UniqueFd pipe, std::string state);
  // Reads `pipe` to EOF, keeping at most max_bytes.
  void start_load(UniqueFd pipe, std::size_t max_bytes);
  bool active() const { return thread_.joinable(); }
  Direction direction() const { return direction_; }

  struct Outcome {
    std::string data;   // what a load read
    std::string error;  // non-empty: the transfer failed, and why
  };
  // Waits for the bytes to have moved. Call once per start.
  Outcome finish();

 private:
  std::thread thread_;
  Direction direction_ = Direction::Save;
  Outcome outcome_;
};

}  // namespace gondolin::vfs::vhost
