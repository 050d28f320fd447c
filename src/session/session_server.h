// The owner's end of a session socket: other gondolin processes of the same
// user attach commands to this VM or ask it to snapshot itself. One thread
// accepts; each connection gets its own thread (util/connection_threads.h:
// attach is rare and blocking I/O keeps it simple); everything else happens
// through SessionHost.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "gondolin/exec.h"
#include "gondolin/guest_ssh.h"
#include "gondolin/live_policy.h"
#include "gondolin/session.h"
#include "proto/control_protocol.h"
#include "proto/session_messages.h"
#include "util/connection_threads.h"

namespace gondolin::session {

class FrameSocket;

// What the VM offers its session clients (implemented by src/vm).
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  virtual Process attach(const proto::ExecStart& request) = 0;
  // Saves the VM and stops it (or, with `keep_running`, lets it continue).
  // `saved` runs once the snapshot is complete and before the session ends,
  // so a requester hears back even though the owner's process may exit as
  // soon as its VM stops. Throws gondolin::Error.
  virtual SnapshotInfo snapshot(const std::filesystem::path& dir, bool keep_running,
                                const std::function<void(const SnapshotInfo&)>& saved) = 0;
  // The HTTP policy as it stands, after `change` if there is one (made by
  // `uid`). Throws gondolin::Error naming a bad change.
  virtual PolicyState policy(const std::optional<PolicyChange>& change, uid_t uid) = 0;
  // Host -> guest SSH (Vm::enable_ssh). Throws gondolin::Error.
  virtual GuestSshAccess enable_ssh() = 0;
};

class SessionServer {
 public:
  // Binds `socket_path` (mode 0600) and starts accepting.
  SessionServer(std::filesystem::path socket_path, SessionHost& host);
  ~SessionServer();  // stops accepting, ends every connection, removes the socket
  SessionServer(const SessionServer&) = delete;
  SessionServer& operator=(const SessionServer&) = delete;

 private:
  struct Connection {
    uid_t uid = 0;  // the peer's, from SO_PEERCRED
    std::shared_ptr<FrameSocket> socket;
  };
  // One handler per first frame of a connection (kRoutes in the .cpp).
  void serve(int fd);
  void serve_attach(Connection& c, proto::PayloadReader& payload);
  void serve_snapshot(Connection& c, proto::PayloadReader& payload);
  void serve_policy(Connection& c, proto::PayloadReader& payload);
  void serve_ssh(Connection& c, proto::PayloadReader& payload);

  std::filesystem::path path_;
  SessionHost& host_;
  std::unique_ptr<ConnectionThreads> connections_;
};

}  // namespace gondolin::session
