// The agent's event loop: serves the control port, runs execs, reaps children.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "guest_exec.h"
#include "proto/control_protocol.h"

namespace gondolin::agent {

struct AgentIdentity {
  std::uint64_t uptime_at_start_ns = 0;
  std::uint64_t init_duration_ns = 0;
  bool is_init = false;  // PID 1: may set the clock, hostname and power off
  std::string boot_report;
  std::string init_extra_error;  // see init_extra.h
};

class Agent {
 public:
  Agent(int port_fd, AgentIdentity identity);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Runs until the host asks for shutdown (returns) or the port fails.
  void run();

 private:
  enum class Kind : std::uint8_t { Port, Signal, Stdout, Stderr, Stdin, Status };

  void send_frame(std::vector<std::uint8_t> frame);
  void send_error(std::uint32_t id, proto::ErrorStage stage, int err, const std::string& msg);
  void flush_port();
  void mark_host_away();
  void read_port();
  using Frame = proto::FrameDecoder::Frame;
  void handle_frame(Frame& frame);
  // One per host frame type (the table in handle_frame).
  void on_config_frame(std::uint32_t id, Frame& frame, proto::PayloadReader& r);
  void on_exec_start_frame(std::uint32_t id, Frame& frame, proto::PayloadReader& r);
  void on_stdin_frame(std::uint32_t id, Frame& frame, proto::PayloadReader& r);
  void on_stdin_eof_frame(std::uint32_t id, Frame& frame, proto::PayloadReader& r);
  void on_credit_frame(std::uint32_t id, Frame& frame, proto::PayloadReader& r);
  void on_resize_frame(std::uint32_t id, Frame& frame, proto::PayloadReader& r);
  void on_signal_frame(std::uint32_t id, Frame& frame, proto::PayloadReader& r);
  void on_shutdown_frame(std::uint32_t id, Frame& frame, proto::PayloadReader& r);
  void on_snapshot_prepare_frame(std::uint32_t id, Frame& frame, proto::PayloadReader& r);
  void on_snapshot_abort_frame(std::uint32_t id, Frame& frame, proto::PayloadReader& r);
  void on_resume_frame(std::uint32_t id, Frame& frame, proto::PayloadReader& r);
  void on_file_op_frame(std::uint32_t id, Frame& frame, proto::PayloadReader& r);
  void on_mount_frame(std::uint32_t id, Frame& frame, proto::PayloadReader& r);
  void apply_config(const proto::Config& cfg);
  void send_hello();
  void prepare_snapshot();
  void resume_after_snapshot();

  void start_exec(std::uint32_t id, const proto::ExecStart& req);
  void on_status(GuestExec& ex);
  void on_output(GuestExec& ex, WatchedFd& fd, proto::FrameType type);
  void write_stdin(GuestExec& ex);
  void reap_children();
  void finish_if_done(GuestExec& ex);
  void close_watched(WatchedFd& fd);
  void set_interest(WatchedFd& fd, Kind kind, std::uint32_t id, std::uint32_t mask);
  void refresh_interest(GuestExec& ex);
  GuestExec* find(std::uint32_t id);
  void erase(std::uint32_t id);

  int epoll_fd_ = -1;
  int port_fd_ = -1;
  int signal_fd_ = -1;
  AgentIdentity identity_;
  std::uint32_t port_mask_ = 0;
  bool port_hung_up_ = false;
  bool shutdown_requested_ = false;
  // Only outside a VM (--serve-fd): the socket reached EOF and its peer
  // never comes back, so whatever is still queued can be dropped.
  bool host_gone_ = false;
  // Between SnapshotPrepare and Resume/SnapshotAbort nothing is written to
  // the port, so the snapshot never holds half a frame in either direction.
  bool frozen_ = false;

  proto::FrameDecoder decoder_;
  std::deque<std::vector<std::uint8_t>> outgoing_;
  std::size_t outgoing_offset_ = 0;
  std::size_t outgoing_bytes_ = 0;

  std::map<std::uint32_t, std::unique_ptr<GuestExec>> execs_;
  std::map<int, std::uint32_t> exec_by_pid_;
};

}  // namespace gondolin::agent
