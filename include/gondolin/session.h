// Running VMs other terminals can find and join, and snapshots of them.
//
// Every VM registers itself under $XDG_CACHE_HOME/gondolin/sessions/ with a
// JSON description and a unix socket (owner-only) through which `gondolin
// attach` runs commands in it and `gondolin snapshot` saves it. A snapshot
// holds the VM's full memory and device state, so a resumed session continues
// its processes where they were.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gondolin/exec.h"
#include "gondolin/guest_ssh.h"
#include "gondolin/live_policy.h"

namespace gondolin {

namespace session {
class FrameSocket;
}  // namespace session
namespace proto {
struct ExecStart;
}  // namespace proto

struct SessionInfo {
  std::string id;        // uuid
  int pid = 0;           // the gondolin process that owns the VM
  std::string image;     // name:tag (id)
  std::string image_id;  // the store id alone
  std::string started;   // RFC 3339
  double age_seconds = 0;
  std::string command;  // what the owner runs, for humans
  std::string accel;
  std::string state;                // "running"
  std::vector<std::string> mounts;  // descriptions
  std::string network;              // policy description, no secret values
  std::filesystem::path socket_path;
};

struct SnapshotInfo;

// A command running in another process's session, driven through its socket
// (what `gondolin attach` uses). The same calls as Process, plus detach().
class AttachedProcess {
 public:
  AttachedProcess(AttachedProcess&&) noexcept;
  AttachedProcess& operator=(AttachedProcess&&) noexcept;
  ~AttachedProcess();  // the session's owner ends the command when it sees us gone

  std::optional<OutputChunk> read();  // nullopt at the end; throws if the session ends
  void write_stdin(std::string_view data);
  void close_stdin();
  void resize(std::uint16_t rows, std::uint16_t cols);
  void send_signal(int signo);
  ExitStatus wait();
  // Stops talking to the command without ending it; a blocked read() wakes and throws.
  void detach();

 private:
  friend class Session;
  AttachedProcess(const SessionInfo& session, const proto::ExecStart& request);  // connects, starts
  std::unique_ptr<session::FrameSocket> socket_;
  std::optional<ExitStatus> status_;
};

class Session {
 public:
  // Live sessions of this user, newest first. Entries of dead processes are removed.
  static std::vector<SessionInfo> list();
  // By uuid or unique prefix; throws gondolin::Error (Usage) naming the
  // candidates when the prefix is ambiguous, or when nothing matches.
  static SessionInfo find(const std::string& id_or_prefix);

  // Starts `command` in the session's VM. ExecOptions as for Vm::spawn,
  // except timeout and stdin_data, which the session's owner does not take
  // (gondolin::Error, Usage). Throws gondolin::Error if the session refuses.
  static AttachedProcess attach(const SessionInfo& session, const Command& command, const ExecOptions& options);
  // Asks the session's owner to save it (memory included) under output_dir
  // (empty: the snapshot store) and to stop it, or to keep it running.
  static SnapshotInfo snapshot(const SessionInfo& session, const std::filesystem::path& output_dir = {},
                               bool keep_running = false);
  // The session's HTTP policy, and live changes to it (Vm::change_policy,
  // made from another process; the egress log names this process's uid).
  static PolicyState policy(const SessionInfo& session);
  static PolicyState change_policy(const SessionInfo& session, const PolicyChange& change);
  // Host -> guest SSH into the session (Vm::enable_ssh, from another process).
  static GuestSshAccess enable_ssh(const SessionInfo& session);
};

struct SnapshotInfo {
  std::string id;  // 16 hex digits
  std::filesystem::path dir;
  std::string created;
  std::string image;              // name:tag (id)
  std::string image_id;           // the store id alone
  std::uint64_t state_bytes = 0;  // disk taken by the memory and device state
  double save_seconds = 0;        // how long the VM was paused to write it
};

// Snapshots under $XDG_CACHE_HOME/gondolin/snapshots/, newest first.
std::vector<SnapshotInfo> list_snapshots();
// By id, unique id prefix, or path to a snapshot directory.
SnapshotInfo find_snapshot(const std::string& reference);
void remove_snapshot(const std::string& reference);

}  // namespace gondolin
