// One mount served over virtio-fs: we are the vhost-user back-end of QEMU's
// vhost-user-fs device. QEMU holds the other end of our socket pair as its
// chardev; the guest's virtio-fs driver puts FUSE requests on the rings,
// which live in guest RAM shared with us (memfd). A thread of its own per
// mount waits on the socket and the rings' kick eventfds, hands each request
// to the mount's FuseServer and writes the reply straight into the guest's
// buffers (with FOPEN_DIRECT_IO those are the guest process's own pages).
//
// Snapshots: QEMU (8.2 and later) migrates the device's state through us
// (VhostUserBackend, DEVICE_STATE): the FUSE session (FuseServer::
// export_state) framed by a magic and a version, loaded into the server of
// the resumed VM before its rings start. A state that does not parse is
// refused (CHECK_DEVICE_STATE fails, and so does QEMU's load).
//
// Waiting: after serving requests the thread watches the rings for
// kSpinAfterReply before it sleeps in poll(). A guest's next request comes
// soon after our reply (70–220 µs for nine in ten under TCG here), and
// waking a sleeping thread through the kick eventfd costs as much again; so
// a busy mount is served without that hop (5 000 creates ~14% faster,
// deletes ~19%, bulk writes no slower). Between any two bursts the loop
// still polls the socket and the stop event, without sleeping, so no stream
// of requests starves them.
//
// Ring 0 is the high-priority queue (FORGET, INTERRUPT: no reply), ring 1
// the request queue. The device has no notification queue, and the server
// needs none: it never tells the guest kernel anything unasked (a link made
// through the guest names the node the guest already holds; NodeTable).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "util/unique_fd.h"
#include "vfs/fuse_server.h"
#include "vfs/vhost/vhost_user_backend.h"

namespace gondolin::vfs::vhost {

class VirtioFsServer {
 public:
  static constexpr std::uint32_t kRequestQueues = 1;
  // How long the thread watches the rings after a reply before sleeping.
  static constexpr std::chrono::microseconds kSpinAfterReply{250};
  // Called once, on the server's thread, if the guest or QEMU breaks the
  // protocol (not when QEMU simply goes away).
  using DeadHandler = std::function<void(const std::string& why)>;

  VirtioFsServer(std::unique_ptr<FuseServer> server, std::string label);
  ~VirtioFsServer();
  VirtioFsServer(const VirtioFsServer&) = delete;
  VirtioFsServer& operator=(const VirtioFsServer&) = delete;

  // Makes the socket pair and returns QEMU's end (for -chardev socket,fd=N).
  UniqueFd create_socket();
  // Starts the thread; QEMU may already be waiting for our answers.
  void start(DeadHandler on_dead);
  // Ends the thread (the connection is closed). Idempotent.
  void stop();

  const std::string& label() const { return label_; }
  // Any thread: QEMU accepted DEVICE_STATE, so a snapshot can save this mount.
  bool state_migratable() const { return state_migratable_.load(); }
  // Any thread: why QEMU's last state transfer failed on our side ("" if it did not).
  std::string state_error() const;
  // Requests handled so far by opcode; read after stop().
  std::string describe_counts() const;

 private:
  void run();
  // Serves every available request on ring `index`: how many, or nothing
  // once the mount is dead.
  std::optional<std::size_t> drain(std::uint32_t index);
  // Watches the serving rings until `until`: true as soon as one has a request.
  bool wait_for_request(std::chrono::steady_clock::time_point until) const;
  void die(const std::string& why);
  std::string save_state() const;
  std::string load_state(std::string_view state);

  std::unique_ptr<FuseServer> server_;
  std::string label_;
  VhostUserBackend backend_;
  UniqueFd socket_;
  UniqueFd stop_event_;
  DeadHandler on_dead_;
  std::thread thread_;
  std::array<std::uint64_t, 64> counts_{};
  std::atomic<bool> state_migratable_{false};
  mutable std::mutex state_error_mutex_;
  std::string state_error_;
};

}  // namespace gondolin::vfs::vhost
