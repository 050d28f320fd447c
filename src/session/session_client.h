// The other end of a session socket: `gondolin attach` and `gondolin snapshot`.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "gondolin/exec.h"
#include "gondolin/session.h"
#include "proto/control_protocol.h"

namespace gondolin::session {

class FrameSocket;

// A command running in another process's VM, driven over its session socket.
class AttachedCommand {
 public:
  // Connects and starts the command; throws gondolin::Error.
  AttachedCommand(const SessionInfo& session, const proto::ExecStart& request);
  ~AttachedCommand();

  std::optional<OutputChunk> read();  // nullopt at the end
  void write_stdin(std::string_view data);
  void close_stdin();
  void resize(std::uint16_t rows, std::uint16_t cols);
  void send_signal(int signo);
  ExitStatus wait();
  // Leaves the command running in the session and wakes a blocked read(),
  // which then throws; the owner ends the command when it sees us gone.
  void detach();

 private:
  std::unique_ptr<FrameSocket> socket_;
  std::optional<ExitStatus> status_;
};

// Asks the session's owner to snapshot and stop it (or keep it running);
// returns the snapshot.
SnapshotInfo request_snapshot(const SessionInfo& session, const std::filesystem::path& output_dir,
                              bool keep_running = false);

}  // namespace gondolin::session
