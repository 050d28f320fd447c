#include "vm/session_endpoints.h"

#include "util/random_hex.h"

namespace gondolin::vm {

void SessionEndpoints::open(SessionInfo info, session::SessionHost& host) {
  id_ = session::new_session_id();
  info.id = id_;
  info.socket_path = session::sessions_dir() / (id_ + ".sock");
  server_ = std::make_unique<session::SessionServer>(info.socket_path, host);
  record_ = std::make_unique<session::SessionRecord>(info);
}

GuestSshAccess SessionEndpoints::enable_ssh(GuestSshServer::Spawn spawn, GuestSshServer::WriteFile write_file) {
  std::lock_guard lock(ssh_mutex_);
  if (!ssh_) {
    const std::string name = id_.empty() ? "unregistered-" + random_hex(8) : id_;
    ssh_ = std::make_unique<GuestSshServer>(session::sessions_dir() / (name + ".ssh"), "gondolin-" + name.substr(0, 8),
                                            std::move(spawn), std::move(write_file));
  }
  return ssh_->access();
}

void SessionEndpoints::close() {
  server_.reset();
  record_.reset();
  std::filesystem::path ssh_dir;
  {
    std::lock_guard lock(ssh_mutex_);
    if (ssh_) ssh_dir = std::filesystem::path(ssh_->access().identity_file).parent_path();
    ssh_.reset();
  }
  if (!ssh_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(ssh_dir, ec);
  }
}

}  // namespace gondolin::vm
