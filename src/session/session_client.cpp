// The client end of a session socket (`gondolin attach`, `gondolin snapshot`):
// AttachedProcess, Session::attach and Session::snapshot of gondolin/session.h.
#include "gondolin/session.h"

#include "config/policy_state_json.h"
#include "control/exec_request.h"
#include "gondolin/error.h"
#include "proto/control_protocol.h"
#include "proto/session_messages.h"
#include "session/frame_socket.h"
#include "session/policy_request.h"

namespace gondolin::session {
namespace {

using proto::FrameType;

[[noreturn]] void remote_error(const proto::FrameDecoder::Frame& f) {
  proto::PayloadReader r(f.payload.data(), f.payload.size());
  auto e = proto::ErrorMsg::decode(r);
  // error_number: the owner's ErrorKind + 1 (session_server.cpp), 0 if none.
  ErrorKind kind = ErrorKind::Guest;
  if (e && e->error_number >= 1 && e->error_number <= static_cast<int>(ErrorKind::Internal) + 1)
    kind = static_cast<ErrorKind>(e->error_number - 1);
  throw Error(kind, e ? e->message : "the session refused the request");
}

// One request on a fresh connection to the session's owner, one reply.
template <class Reply, class Request>
Reply ask(const SessionInfo& session, FrameType type, const Request& request, FrameType reply_type,
          const std::string& what) {
  FrameSocket s(connect_unix(session.socket_path.string()));
  s.write(proto::make_frame(type, 1, request));
  auto reply = s.read();
  if (!reply) throw Error(ErrorKind::Guest, "the session closed its socket without answering the " + what);
  if (reply->header.type == FrameType::Error) remote_error(*reply);
  proto::PayloadReader r(reply->payload.data(), reply->payload.size());
  auto msg = Reply::decode(r);
  if (reply->header.type != reply_type || !msg) throw Error(ErrorKind::Guest, "unexpected reply to the " + what);
  return *msg;
}

// Shows the policy (no change) or changes it; the reply is the policy after.
PolicyState policy_exchange(const SessionInfo& session, const std::optional<PolicyChange>& change) {
  auto reply = ask<proto::SessionPolicyStateMsg>(session, FrameType::SessionPolicy, policy_request(change),
                                                 FrameType::SessionPolicyState, "policy request");
  return config::policy_state_from_json(reply.json);
}

}  // namespace
}  // namespace gondolin::session

namespace gondolin {

using proto::FrameType;
using session::connect_unix;
using session::FrameSocket;

AttachedProcess::AttachedProcess(const SessionInfo& session, const proto::ExecStart& request)
    : socket_(std::make_unique<FrameSocket>(connect_unix(session.socket_path.string()))) {
  if (!socket_->write(proto::make_frame(FrameType::ExecStart, 1, request)))
    throw Error(ErrorKind::Io, "the session closed its socket");
  auto reply = socket_->read();
  if (!reply) throw Error(ErrorKind::Guest, "the session ended before the command started");
  if (reply->header.type == FrameType::Error) session::remote_error(*reply);
  if (reply->header.type != FrameType::ExecStarted) throw Error(ErrorKind::Guest, "unexpected reply from the session");
}

AttachedProcess::AttachedProcess(AttachedProcess&&) noexcept = default;
AttachedProcess& AttachedProcess::operator=(AttachedProcess&&) noexcept = default;
AttachedProcess::~AttachedProcess() = default;

std::optional<OutputChunk> AttachedProcess::read() {
  if (status_) return std::nullopt;
  auto f = socket_->read();
  if (!f) throw Error(ErrorKind::Guest, "the session ended (its VM stopped or its owner exited)");
  proto::PayloadReader r(f->payload.data(), f->payload.size());
  switch (f->header.type) {
    case FrameType::Stdout:
    case FrameType::Stderr:
      return OutputChunk{f->header.type == FrameType::Stdout ? OutputStream::Stdout : OutputStream::Stderr,
                         std::string(f->payload.begin(), f->payload.end())};
    case FrameType::AttachExit: {
      auto e = proto::AttachExitMsg::decode(r);
      if (!e) throw Error(ErrorKind::Guest, "malformed exit status from the session");
      ExitStatus s;
      s.exit_code = e->exit_code;
      s.signal = e->signal;
      s.timed_out = e->timed_out != 0;
      s.start_error = e->start_error;
      status_ = s;
      return std::nullopt;
    }
    case FrameType::Error: session::remote_error(*f);
    default: throw Error(ErrorKind::Guest, "unexpected frame from the session");
  }
}

void AttachedProcess::write_stdin(std::string_view data) {
  for (std::size_t off = 0; off < data.size(); off += proto::kMaxDataChunk) {
    std::size_t n = std::min<std::size_t>(proto::kMaxDataChunk, data.size() - off);
    socket_->write(proto::make_frame(FrameType::Stdin, 1, reinterpret_cast<const std::uint8_t*>(data.data() + off), n));
  }
}

void AttachedProcess::close_stdin() { socket_->write(proto::make_empty_frame(FrameType::StdinEof, 1)); }

void AttachedProcess::resize(std::uint16_t rows, std::uint16_t cols) {
  socket_->write(proto::make_frame(FrameType::Resize, 1, proto::Resize{rows, cols}));
}

void AttachedProcess::send_signal(int signo) {
  socket_->write(proto::make_frame(FrameType::Signal, 1, proto::SignalRequest{signo}));
}

void AttachedProcess::detach() { socket_->shutdown(); }

ExitStatus AttachedProcess::wait() {
  while (read()) {}
  return *status_;
}

AttachedProcess Session::attach(const SessionInfo& session, const Command& command, const ExecOptions& options) {
  if (options.timeout || !options.stdin_data.empty())
    throw Error(ErrorKind::Usage, "an attached command takes no timeout or stdin_data (write_stdin instead)");
  return AttachedProcess(session, control::exec_start_for(command, options));
}

PolicyState Session::policy(const SessionInfo& session) { return session::policy_exchange(session, std::nullopt); }

PolicyState Session::change_policy(const SessionInfo& session, const PolicyChange& change) {
  return session::policy_exchange(session, change);
}

GuestSshAccess Session::enable_ssh(const SessionInfo& session) {
  auto reply = session::ask<proto::SessionSshAccessMsg>(session, FrameType::SessionSsh, proto::SessionSshRequest{},
                                                        FrameType::SessionSshAccess, "ssh request");
  GuestSshAccess a;
  a.port = reply.port;
  a.user = reply.user;
  a.identity_file = reply.identity_file;
  a.known_hosts_file = reply.known_hosts_file;
  a.alias = reply.alias;
  return a;
}

SnapshotInfo Session::snapshot(const SessionInfo& session, const std::filesystem::path& output_dir, bool keep_running) {
  proto::SessionSnapshotRequest request{output_dir.string(), keep_running ? std::uint8_t{1} : std::uint8_t{0}};
  auto done = session::ask<proto::SessionSnapshotDoneMsg>(session, FrameType::SessionSnapshot, request,
                                                          FrameType::SessionSnapshotDone, "snapshot request");
  return find_snapshot(done.dir);
}

}  // namespace gondolin
