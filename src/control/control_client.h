// The host's side of the control protocol: handshake, exec streams, credit.
// Lives on the VM's io thread; Process objects reach it through ExecBackend.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "control/control_channel.h"
#include "control/process_state.h"
#include "proto/control_protocol.h"
#include "proto/file_messages.h"
#include "proto/mount_messages.h"

namespace gondolin::control {

class ControlClient : public ExecBackend, public std::enable_shared_from_this<ControlClient> {
 public:
  using HelloHandler = std::function<void(const proto::Hello&)>;
  using DeadHandler = std::function<void(const std::string& why)>;
  // How long a timed-out command may take to die after its SIGKILL before
  // the whole VM is stopped (a fork bomb under TCG can starve the agent).
  static constexpr std::chrono::seconds kTimeoutKillGrace{3};

  ControlClient(boost::asio::io_context& io, std::shared_ptr<ControlChannel> channel);

  // on_dead fires once: the channel closed or the guest broke the protocol.
  void start(HelloHandler on_hello, DeadHandler on_dead);
  // After a snapshot restore: tell the agent it has a new host, then handshake.
  void start_resumed(HelloHandler on_hello, DeadHandler on_dead);
  void send_config(const proto::Config& config);

  // Asks the agent to finish its frame in flight and go silent; calls
  // on_ready when its last frame arrived. Until abort_snapshot() we hold every
  // frame we would send, so neither side is mid-frame in the snapshot.
  void prepare_snapshot(std::function<void()> on_ready);
  void abort_snapshot();
  void request_shutdown();

  // Io thread only. The returned state is finished with an error if the
  // channel is already dead.
  std::shared_ptr<detail::ProcessState> start_exec(const proto::ExecStart& request,
                                                   std::optional<std::chrono::milliseconds> timeout);

  // Io thread only. The future fails with gondolin::Error if the VM dies first.
  std::future<proto::FileResult> file_op(const proto::FileOp& op);

  // Io thread only. Asks the agent to mount a FUSE file system; `done` runs
  // on the io thread with the agent's answer, or with an error text if the
  // VM died first.
  using MountDone = std::function<void(const proto::MountResultMsg& result, const std::string& failure)>;
  void mount(const proto::MountRequest& request, MountDone done);

  // Finishes every running exec with `error` (the VM is going away).
  void fail_all(const Error& error);
  std::size_t running_execs() const { return execs_.size(); }

  // ExecBackend (any thread)
  void return_output_credit(std::uint32_t id, std::uint32_t bytes) override;
  void send_stdin(std::uint32_t id, std::string data) override;
  void close_stdin(std::uint32_t id) override;
  void resize(std::uint32_t id, std::uint16_t rows, std::uint16_t cols) override;
  void send_signal(std::uint32_t id, int signo) override;
  void abandon(std::uint32_t id) override;

 private:
  struct Exec {
    std::shared_ptr<detail::ProcessState> state;
    std::string program;                 // argv[0], for start-failure messages
    std::uint32_t output_in_flight = 0;  // bytes the guest sent that we have not credited back
    bool started = false;
    bool abandoned = false;
    bool timed_out = false;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  using Frame = proto::FrameDecoder::Frame;
  void send_frame(std::vector<std::uint8_t> frame);
  void on_frame(Frame& frame);
  // Channel frames (kChannelFrames in on_frame).
  void on_hello_frame(Frame& frame, proto::PayloadReader& r);
  void on_snapshot_ready(Frame& frame, proto::PayloadReader& r);
  void on_file_result(Frame& frame, proto::PayloadReader& r);
  void on_mount_result(Frame& frame, proto::PayloadReader& r);
  void on_channel_error(std::uint32_t id, proto::PayloadReader& r);
  // Exec frames (kExecFrames in on_frame).
  void on_exec_started(std::uint32_t id, Exec& ex, Frame& frame, proto::PayloadReader& r);
  void on_output(std::uint32_t id, Exec& ex, Frame& frame, proto::PayloadReader& r);
  void on_credit(std::uint32_t id, Exec& ex, Frame& frame, proto::PayloadReader& r);
  void on_exit(std::uint32_t id, Exec& ex, Frame& frame, proto::PayloadReader& r);
  void on_exec_error(std::uint32_t id, Exec& ex, Frame& frame, proto::PayloadReader& r);
  void finish(std::uint32_t id, const ExitStatus& status);
  void enforce_timeout(std::uint32_t id);
  void violation(const std::string& what);
  void die(const std::string& why);
  template <typename F>
  void on_io(F&& f);

  boost::asio::io_context& io_;
  std::shared_ptr<ControlChannel> channel_;
  HelloHandler on_hello_;
  DeadHandler on_dead_;
  bool hello_seen_ = false;
  bool dead_ = false;
  std::uint32_t next_id_ = 1;
  std::map<std::uint32_t, Exec> execs_;
  std::map<std::uint32_t, std::promise<proto::FileResult>> file_ops_;
  std::map<std::uint32_t, MountDone> mounts_;
  bool frozen_ = false;
  std::vector<std::vector<std::uint8_t>> held_;
  std::function<void()> on_snapshot_ready_;
};

}  // namespace gondolin::control
