// How others reach a running VM: its entry in the session registry (what
// `gondolin list` shows), the socket `attach`, `snapshot` and `policy` talk
// to, and, once asked for, the loopback SSH listener into the guest with
// its keys.
//
// Threading: open() before the VM is handed out; id() and enable_ssh()
// from any thread after that; close() once, after QEMU is gone, so that
// requests still arriving fail on a stopped guest instead of waiting on it.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "gondolin/vm.h"
#include "session/session_registry.h"
#include "session/session_server.h"
#include "vm/guest_ssh_server.h"

namespace gondolin::vm {

class SessionEndpoints {
 public:
  // Registers `info` under a new id (info.id and info.socket_path are
  // filled in here) and serves `host` on the socket beside the record.
  void open(SessionInfo info, session::SessionHost& host);
  // "" unless open() was called.
  const std::string& id() const { return id_; }
  // The guest's SSH listener, started on the first call; its keys live
  // beside the record (or in a private directory of their own). Throws.
  GuestSshAccess enable_ssh(GuestSshServer::Spawn spawn, GuestSshServer::WriteFile write_file);
  // Unregisters, stops both listeners and removes the SSH keys. Idempotent.
  void close();

 private:
  std::string id_;
  std::unique_ptr<session::SessionServer> server_;
  std::unique_ptr<session::SessionRecord> record_;
  std::mutex ssh_mutex_;
  std::unique_ptr<GuestSshServer> ssh_;
};

}  // namespace gondolin::vm
