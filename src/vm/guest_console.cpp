#include "vm/guest_console.h"

#include <boost/asio/buffer.hpp>

#include <vector>

#include "util/logging.h"

namespace gondolin::vm {
namespace {
constexpr std::size_t kHistoryKeep = 8 * 1024;
constexpr std::size_t kMaxLine = 1024;
}  // namespace

GuestConsole::GuestConsole(boost::asio::io_context& io, UniqueFd socket,
                           std::shared_ptr<std::atomic<std::uint64_t>> oom_kills)
    : socket_(io, boost::asio::local::stream_protocol(), socket.release()), oom_kills_(std::move(oom_kills)) {}

void GuestConsole::start() { read_more(); }

void GuestConsole::close() {
  boost::system::error_code ec;
  socket_.close(ec);
}

void GuestConsole::read_more() {
  socket_.async_read_some(boost::asio::buffer(buf_),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                            if (ec) return;
                            self->partial_.append(self->buf_.data(), n);
                            self->take_lines();
                            self->read_more();
                          });
}

void GuestConsole::take_lines() {
  std::size_t start = 0;
  for (;;) {
    std::size_t nl = partial_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string line = partial_.substr(start, nl - start);
    start = nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    // The guest is untrusted: keep its text printable before it reaches a log.
    for (char& c : line)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    log().debug("guest console: {}", line);
    // "Out of memory: Killed process 123 (python3) ..." (also the memcg variant).
    if (oom_kills_ && (line.find("Out of memory: Killed process") != std::string::npos ||
                       line.find("out of memory: Killed process") != std::string::npos))
      ++*oom_kills_;
    history_ += line;
    history_ += '\n';
  }
  partial_.erase(0, start);
  if (partial_.size() > kMaxLine) partial_.clear();
  if (history_.size() > 2 * kHistoryKeep) history_.erase(0, history_.size() - kHistoryKeep);
}

std::string GuestConsole::tail(std::size_t lines) const {
  std::vector<std::string> all;
  std::size_t start = 0;
  while (start < history_.size()) {
    std::size_t nl = history_.find('\n', start);
    if (nl == std::string::npos) nl = history_.size();
    all.push_back(history_.substr(start, nl - start));
    start = nl + 1;
  }
  std::string out;
  for (std::size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i)
    out += (out.empty() ? "" : " | ") + all[i];
  return out;
}

}  // namespace gondolin::vm
