#include "session/session_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "config/policy_state_json.h"
#include "gondolin/error.h"
#include "session/frame_socket.h"
#include "session/policy_request.h"
#include "util/logging.h"

namespace gondolin::session {
namespace {

using proto::FrameType;

// On the session socket, Error's error_number carries the ErrorKind + 1 (0:
// none), so a client reports a bad request as the usage error it is.
void send_error(FrameSocket& s, const std::string& message, std::int32_t kind_plus_one = 0) {
  s.write(proto::make_frame(FrameType::Error, 1, proto::ErrorMsg{proto::ErrorStage::Protocol, kind_plus_one, message}));
}

// The peer's uid (SO_PEERCRED), or uid_t(-1) if it cannot be had.
uid_t peer_uid(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  return ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.uid : static_cast<uid_t>(-1);
}

constexpr unsigned kMaxConnections = 64;

}  // namespace

SessionServer::SessionServer(std::filesystem::path socket_path, SessionHost& host)
    : path_(std::move(socket_path)), host_(host) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path_.string().size() >= sizeof addr.sun_path)
    throw Error(ErrorKind::Io, "session socket path too long: " + path_.string());
  std::memcpy(addr.sun_path, path_.c_str(), path_.string().size() + 1);
  UniqueFd listen_fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  std::filesystem::remove(path_);
  // Created owner-only from the start: no window in which others could connect.
  mode_t old = ::umask(0177);
  int rc = ::bind(listen_fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0 || ::listen(listen_fd.get(), 16) != 0)
    throw Error(ErrorKind::Io, "cannot listen on " + path_.string() + ": " + std::strerror(errno));
  ::chmod(path_.c_str(), 0600);
  // Only our own user: the directory is 0700 and the socket 0600, and we
  // check the peer anyway.
  connections_ = std::make_unique<ConnectionThreads>(
      std::move(listen_fd), kMaxConnections, [this](int fd) { serve(fd); },
      [](int fd) { return peer_uid(fd) == ::getuid(); });
}

SessionServer::~SessionServer() {
  connections_.reset();
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

void SessionServer::serve(int fd) {
  Connection c{peer_uid(fd), std::make_shared<FrameSocket>(UniqueFd(::dup(fd)))};
  using Handler = void (SessionServer::*)(Connection&, proto::PayloadReader&);
  static constexpr std::pair<FrameType, Handler> kRoutes[] = {
      {FrameType::ExecStart, &SessionServer::serve_attach},
      {FrameType::SessionSnapshot, &SessionServer::serve_snapshot},
      {FrameType::SessionPolicy, &SessionServer::serve_policy},
      {FrameType::SessionSsh, &SessionServer::serve_ssh},
  };
  FrameSocket& s = *c.socket;
  try {
    auto first = s.read();
    if (!first) return;
    proto::PayloadReader r(first->payload.data(), first->payload.size());
    for (const auto& [type, handler] : kRoutes)
      if (first->header.type == type) return (this->*handler)(c, r);
    send_error(s, "unexpected request on the session socket");
  } catch (const Error& e) {
    send_error(s, e.what(), static_cast<std::int32_t>(e.kind()) + 1);
  }
}

void SessionServer::serve_snapshot(Connection& c, proto::PayloadReader& r) {
  FrameSocket& s = *c.socket;
  auto req = proto::SessionSnapshotRequest::decode(r);
  if (!req) return send_error(s, "malformed snapshot request");
  host_.snapshot(req->output_dir, req->keep_running != 0, [&s](const SnapshotInfo& info) {
    s.write(proto::make_frame(FrameType::SessionSnapshotDone, 1,
                              proto::SessionSnapshotDoneMsg{info.id, info.dir.string()}));
  });
}

void SessionServer::serve_policy(Connection& c, proto::PayloadReader& r) {
  auto req = proto::SessionPolicyRequest::decode(r);
  if (!req) return send_error(*c.socket, "malformed policy request");
  PolicyState state = host_.policy(policy_change(*req), c.uid);
  c.socket->write(proto::make_frame(FrameType::SessionPolicyState, 1,
                                    proto::SessionPolicyStateMsg{config::policy_state_to_json(state)}));
}

void SessionServer::serve_ssh(Connection& c, proto::PayloadReader&) {
  GuestSshAccess a = host_.enable_ssh();
  c.socket->write(
      proto::make_frame(FrameType::SessionSshAccess, 1,
                        proto::SessionSshAccessMsg{a.port, a.user, a.identity_file, a.known_hosts_file, a.alias}));
}

void SessionServer::serve_attach(Connection& c, proto::PayloadReader& payload) {
  auto request = proto::ExecStart::decode(payload);
  if (!request) return send_error(*c.socket, "malformed exec request");
  FrameSocket& s = *c.socket;
  Process p = host_.attach(*request);
  s.write(proto::make_frame(FrameType::ExecStarted, 1, proto::ExecStarted{0}));
  // Client -> guest on a second thread; guest -> client here. The socket's
  // own buffer is the back-pressure: a slow client slows our reads.
  std::thread input([&] {
    try {
      while (auto f = s.read()) {
        proto::PayloadReader r(f->payload.data(), f->payload.size());
        switch (f->header.type) {
          case FrameType::Stdin:
            p.write_stdin(std::string_view(reinterpret_cast<const char*>(f->payload.data()), f->payload.size()));
            break;
          case FrameType::StdinEof: p.close_stdin(); break;
          case FrameType::Resize:
            if (auto z = proto::Resize::decode(r)) p.resize(z->rows, z->cols);
            break;
          case FrameType::Signal:
            if (auto sig = proto::SignalRequest::decode(r)) p.send_signal(sig->signo);
            break;
          default: return;
        }
      }
    } catch (const Error&) {}
    // The client went away: its command goes with it.
    p.send_signal(SIGHUP);
  });
  try {
    while (auto chunk = p.read()) {
      auto type = chunk->stream == OutputStream::Stdout ? FrameType::Stdout : FrameType::Stderr;
      for (std::size_t off = 0; off < chunk->data.size(); off += proto::kMaxDataChunk) {
        std::size_t n = std::min<std::size_t>(proto::kMaxDataChunk, chunk->data.size() - off);
        if (!s.write(proto::make_frame(type, 1, reinterpret_cast<const std::uint8_t*>(chunk->data.data() + off), n)))
          p.send_signal(SIGHUP);
      }
    }
    ExitStatus st = p.wait();
    s.write(proto::make_frame(FrameType::AttachExit, 1,
                              proto::AttachExitMsg{st.exit_code, st.signal,
                                                   st.timed_out ? std::uint8_t{1} : std::uint8_t{0}, st.start_error}));
  } catch (const Error& e) {
    send_error(s, e.what());
  }
  s.shutdown();
  input.join();
}

}  // namespace gondolin::session
