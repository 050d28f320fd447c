// Process: the user-thread side of an exec. Blocking calls wait on the shared
// state; everything that talks to the guest is posted to the io thread.
#include <algorithm>

#include "control/process_state.h"
#include "gondolin/exec.h"
#include "proto/control_protocol.h"

namespace gondolin {
namespace {

// Credit goes back in batches so a chatty command does not cost one frame per read.
constexpr std::uint32_t kCreditBatch = proto::kInitialWindow / 4;

std::shared_ptr<control::ExecBackend> backend_of(detail::ProcessState& s) { return s.backend.lock(); }

}  // namespace

Process detail::make_process(std::shared_ptr<ProcessState> state) { return Process(std::move(state)); }

Process::Process(std::shared_ptr<detail::ProcessState> state) : state_(std::move(state)) {}
Process::Process(Process&&) noexcept = default;
Process& Process::operator=(Process&&) noexcept = default;

Process::~Process() {
  if (!state_) return;
  bool finished;
  {
    std::lock_guard lock(state_->mutex);
    finished = state_->finished;
  }
  if (!finished)
    if (auto b = backend_of(*state_)) b->abandon(state_->id);
}

std::uint32_t Process::id() const { return state_->id; }

std::optional<OutputChunk> Process::read_for(std::chrono::milliseconds timeout, bool& ended) {
  ended = false;
  std::unique_lock lock(state_->mutex);
  auto ready = [&] { return !state_->output.empty() || state_->finished; };
  if (!state_->changed.wait_for(lock, timeout, ready)) return std::nullopt;
  if (state_->output.empty()) {
    if (state_->failure) throw *state_->failure;
    ended = true;
    return std::nullopt;
  }
  OutputChunk chunk = std::move(state_->output.front());
  state_->output.pop_front();
  state_->unreturned_credit += static_cast<std::uint32_t>(chunk.data.size());
  std::uint32_t credit = 0;
  if (state_->unreturned_credit >= kCreditBatch || state_->output.empty())
    credit = std::exchange(state_->unreturned_credit, 0);
  lock.unlock();
  if (credit)
    if (auto b = backend_of(*state_)) b->return_output_credit(state_->id, credit);
  return chunk;
}

std::optional<OutputChunk> Process::read() {
  for (;;) {
    bool ended = false;
    auto chunk = read_for(std::chrono::hours(24), ended);
    if (chunk || ended) return chunk;
  }
}

void Process::write_stdin(std::string_view data) {
  while (!data.empty()) {
    std::unique_lock lock(state_->mutex);
    if (!state_->stdin_open) throw Error(ErrorKind::Usage, "stdin of this process is not open");
    state_->changed.wait(lock, [&] { return state_->stdin_credit > 0 || state_->finished || !state_->stdin_open; });
    if (state_->failure) throw *state_->failure;
    if (state_->finished || !state_->stdin_open) return;  // nobody left to read it
    std::size_t n = std::min<std::size_t>(state_->stdin_credit, data.size());
    state_->stdin_credit -= static_cast<std::uint32_t>(n);
    lock.unlock();
    auto b = backend_of(*state_);
    if (!b) return;
    b->send_stdin(state_->id, std::string(data.substr(0, n)));
    data.remove_prefix(n);
  }
}

void Process::close_stdin() {
  {
    std::lock_guard lock(state_->mutex);
    if (!state_->stdin_open) return;
    state_->stdin_open = false;
    state_->changed.notify_all();
  }
  if (auto b = backend_of(*state_)) b->close_stdin(state_->id);
}

void Process::resize(std::uint16_t rows, std::uint16_t cols) {
  if (auto b = backend_of(*state_)) b->resize(state_->id, rows, cols);
}

void Process::send_signal(int signo) {
  if (auto b = backend_of(*state_)) b->send_signal(state_->id, signo);
}

ExitStatus Process::wait() {
  while (read()) {}
  std::lock_guard lock(state_->mutex);
  if (state_->failure) throw *state_->failure;
  return state_->status;
}

}  // namespace gondolin
