// The host side of host -> guest SSH (gondolin/guest_ssh.h). Theory of
// operation:
//
//   ssh client --TCP--> 127.0.0.1:PORT (accept thread)
//     each connection: Vm::spawn("/usr/sbin/sshd -i ...") in the guest,
//     socket -> process stdin (one thread), process stdout -> socket (one
//     thread); sshd's stderr goes to gondolin's debug log.
//
// At most kMaxConnections at once (util/connection_threads.h). The guest side
// is prepared once: its host key, the client's authorized key and sshd's
// privilege-separation directory, under /etc/gondolin/ssh. Destroying the
// server closes the listener and every connection (their sshd processes end
// with their stdin) and waits for the threads.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "gondolin/exec.h"
#include "gondolin/guest_ssh.h"
#include "util/connection_threads.h"

namespace gondolin::vm {

class GuestSshServer {
 public:
  static constexpr unsigned kMaxConnections = 16;
  using Spawn = std::function<Process(const Command&, const ExecOptions&)>;
  using WriteFile = std::function<void(const std::string& path, std::string_view data, std::uint32_t mode)>;

  // Makes the key pairs in `dir` (created 0700), prepares the guest, starts
  // listening. Throws gondolin::Error naming what failed.
  GuestSshServer(const std::filesystem::path& dir, const std::string& alias, Spawn spawn, WriteFile write_file);
  ~GuestSshServer();
  GuestSshServer(const GuestSshServer&) = delete;
  GuestSshServer& operator=(const GuestSshServer&) = delete;

  const GuestSshAccess& access() const { return access_; }

 private:
  void serve(int fd);  // one connection, on its own thread

  GuestSshAccess access_;
  Spawn spawn_;
  std::unique_ptr<ConnectionThreads> connections_;  // last: stopped first
};

}  // namespace gondolin::vm
