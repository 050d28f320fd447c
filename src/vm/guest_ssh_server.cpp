#include "vm/guest_ssh_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "egress/ssh/ssh_host_key.h"
#include "gondolin/error.h"
#include "util/files.h"
#include "util/logging.h"

namespace gondolin::vm {
namespace {

constexpr const char* kGuestDir = "/etc/gondolin/ssh";
constexpr const char* kGuestHostKey = "/etc/gondolin/ssh/ssh_host_ed25519_key";
constexpr const char* kGuestAuthorizedKeys = "/etc/gondolin/ssh/authorized_keys";

// sshd in inetd mode with no configuration file but these settings: keys
// only, root by key only, sftp for scp, nothing written to the guest's disk.
const std::vector<std::string>& sshd_argv() {
  static const std::vector<std::string> argv = {"/usr/sbin/sshd",
                                                "-i",
                                                "-e",
                                                "-f",
                                                "/dev/null",
                                                "-h",
                                                kGuestHostKey,
                                                "-o",
                                                std::string("AuthorizedKeysFile=") + kGuestAuthorizedKeys,
                                                "-o",
                                                "PasswordAuthentication=no",
                                                "-o",
                                                "KbdInteractiveAuthentication=no",
                                                "-o",
                                                "PermitRootLogin=prohibit-password",
                                                "-o",
                                                "Subsystem=sftp internal-sftp",
                                                "-o",
                                                "PidFile=none",
                                                "-o",
                                                "PrintMotd=no",
                                                "-o",
                                                "LogLevel=ERROR"};
  return argv;
}

ExecOptions as_root(bool with_stdin) {
  ExecOptions o;
  o.user = GuestUser{0, 0};
  o.stdin = with_stdin;
  return o;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

UniqueFd listen_on_loopback(std::uint16_t& port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd.get(), 16) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw Error(ErrorKind::Io, std::string("guest ssh: cannot listen on 127.0.0.1: ") + std::strerror(errno));
  port = ntohs(a.sin_port);
  return fd;
}

}  // namespace

GuestSshServer::GuestSshServer(const std::filesystem::path& dir, const std::string& alias, Spawn spawn,
                               WriteFile write_file)
    : spawn_(std::move(spawn)) {
  // A fresh pair each time: nothing from an earlier enable stays valid.
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  auto client = egress::ProxyHostKey::load_or_create(dir, "id_ed25519");
  auto guest = egress::ProxyHostKey::load_or_create(dir / "guest", "ssh_host_ed25519_key");

  Process prep = spawn_(Command::argv({"/bin/sh", "-c",
                                       "test -x /usr/sbin/sshd || exit 3; mkdir -p -m 0700 " + std::string(kGuestDir) +
                                           " && mkdir -p -m 0755 /run/sshd"}),
                        as_root(false));
  ExitStatus st = prep.wait();
  if (st.exit_code == 3)
    throw Error(ErrorKind::Usage, "guest ssh: the image has no /usr/sbin/sshd (add openssh-server to its packages)");
  if (st.shell_status() != 0) throw Error(ErrorKind::Guest, "guest ssh: cannot prepare " + std::string(kGuestDir));
  write_file(kGuestHostKey, guest.private_key_openssh(), 0600);
  write_file(kGuestAuthorizedKeys, client.public_key_line() + " gondolin\n", 0600);

  UniqueFd listen_fd = listen_on_loopback(access_.port);
  access_.identity_file = (dir / "id_ed25519").string();
  access_.known_hosts_file = (dir / "known_hosts").string();
  access_.alias = alias;
  write_file_atomic(access_.known_hosts_file,
                    "[127.0.0.1]:" + std::to_string(access_.port) + " " + guest.public_key_line() + "\n",
                    std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  connections_ =
      std::make_unique<ConnectionThreads>(std::move(listen_fd), kMaxConnections, [this](int fd) { serve(fd); });
}

GuestSshServer::~GuestSshServer() { connections_.reset(); }

void GuestSshServer::serve(int fd) {
  try {
    Process sshd = spawn_(Command::argv(sshd_argv()), as_root(true));
    std::thread to_guest([&sshd, fd] {
      char buf[64 * 1024];
      try {
        for (;;) {
          ssize_t n = ::recv(fd, buf, sizeof buf, 0);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) break;
          sshd.write_stdin(std::string_view(buf, static_cast<std::size_t>(n)));
        }
        sshd.close_stdin();
      } catch (const Error&) {  // sshd ended first
      }
    });
    while (auto chunk = sshd.read()) {
      if (chunk->stream == OutputStream::Stderr) {
        log().debug("guest sshd: {}", chunk->data);
      } else if (!send_all(fd, chunk->data)) {
        break;
      }
    }
    ::shutdown(fd, SHUT_RDWR);  // ends to_guest's recv
    to_guest.join();
    sshd.wait();
  } catch (const std::exception& e) {
    log().warn("guest ssh: a connection failed: {}", e.what());
    ::shutdown(fd, SHUT_RDWR);
  }
}

}  // namespace gondolin::vm
