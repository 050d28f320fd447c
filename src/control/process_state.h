// What a running exec shares between the VM's io thread (which fills it from
// guest frames) and the user's thread (which drains it through Process).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "gondolin/error.h"
#include "gondolin/exec.h"

namespace gondolin::control {

// Operations a Process asks of the io thread; implementations post, never block.
class ExecBackend {
 public:
  virtual ~ExecBackend() = default;
  virtual void return_output_credit(std::uint32_t id, std::uint32_t bytes) = 0;
  virtual void send_stdin(std::uint32_t id, std::string data) = 0;
  virtual void close_stdin(std::uint32_t id) = 0;
  virtual void resize(std::uint32_t id, std::uint16_t rows, std::uint16_t cols) = 0;
  virtual void send_signal(std::uint32_t id, int signo) = 0;
  // The Process went away: kill the command, discard its output.
  virtual void abandon(std::uint32_t id) = 0;
};

}  // namespace gondolin::control

namespace gondolin::detail {

struct ProcessState {
  std::uint32_t id = 0;
  std::weak_ptr<control::ExecBackend> backend;

  std::mutex mutex;
  std::condition_variable changed;
  std::deque<OutputChunk> output;       // bounded by the protocol window
  std::uint32_t unreturned_credit = 0;  // consumed bytes not yet credited back
  std::uint32_t stdin_credit = 0;       // bytes the guest will accept now
  bool stdin_open = false;
  bool finished = false;  // exit status (or failure) known, output complete
  ExitStatus status;
  std::optional<Error> failure;  // the VM went away, or the command could not start
};

}  // namespace gondolin::detail
