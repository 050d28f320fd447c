// One QEMU child: started with PR_SET_PDEATHSIG so it dies with us even if we
// are SIGKILLed, watched through a pidfd, its stderr kept for error messages.
// All methods run on the VM's io thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace gondolin::vm {

class QemuProcess : public std::enable_shared_from_this<QemuProcess> {
 public:
  using ExitHandler = std::function<void(int wait_status)>;

  // `fds`: {parent_fd, child_fd} handed to QEMU. Throws gondolin::Error (Qemu).
  static std::shared_ptr<QemuProcess> start(boost::asio::io_context& io, const std::vector<std::string>& argv,
                                            const std::vector<std::pair<int, int>>& fds, ExitHandler on_exit);
  ~QemuProcess();

  int pid() const { return pid_; }
  bool exited() const { return exited_; }
  // QEMU's own error output, trimmed to its last lines.
  std::string error_text() const;
  void kill(int signo);

 private:
  explicit QemuProcess(boost::asio::io_context& io);
  void watch_exit();
  void read_stderr();
  void drain_stderr_now();

  boost::asio::io_context& io_;
  int pid_ = -1;
  bool exited_ = false;
  boost::asio::posix::stream_descriptor pidfd_;
  boost::asio::posix::stream_descriptor stderr_;
  std::array<char, 4096> buf_{};
  std::string stderr_text_;
  ExitHandler on_exit_;
};

}  // namespace gondolin::vm
