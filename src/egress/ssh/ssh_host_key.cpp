#include "egress/ssh/ssh_host_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "egress/ssh/libssh_handles.h"
#include "gondolin/error.h"
#include "util/paths.h"
#include "util/unique_fd.h"

namespace gondolin::egress {
namespace {

constexpr std::size_t kMaxKeyFileSize = 16 * 1024;

Error io_error(const std::string& what, const std::filesystem::path& path) {
  return Error(ErrorKind::Io, what + " " + path.string() + ": " + std::strerror(errno));
}

void write_all(int fd, const std::string& data, const std::filesystem::path& path) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw io_error("cannot write", path);
    done += static_cast<std::size_t>(n);
  }
}

std::string read_private_key(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) throw io_error("cannot open SSH proxy host key", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw io_error("cannot stat", path);
  if (!S_ISREG(st.st_mode))
    throw Error(ErrorKind::Io, "SSH proxy host key " + path.string() + " is not a regular file");
  if (st.st_uid != ::getuid())
    throw Error(ErrorKind::Io, "SSH proxy host key " + path.string() + " is not owned by the current user");
  if ((st.st_mode & 077) != 0)
    throw Error(ErrorKind::Io,
                "SSH proxy host key " + path.string() + " is readable by others; run: chmod 600 " + path.string());
  if (st.st_size <= 0 || static_cast<std::size_t>(st.st_size) > kMaxKeyFileSize)
    throw Error(ErrorKind::Io, "SSH proxy host key " + path.string() + " has an implausible size");
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw io_error("cannot read", path);
    done += static_cast<std::size_t>(n);
  }
  return text;
}

std::string export_private(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_privkey_base64(key, nullptr, nullptr, nullptr, &b64) != SSH_OK || !b64)
    throw Error(ErrorKind::Internal, "cannot export the generated SSH host key");
  SshCharPtr owned(b64);
  return std::string(b64);
}

// Writes the new key under a temporary name and links it into place, so two
// gondolin processes starting at once never both believe they own the key.
void create_key_file(const std::filesystem::path& path) {
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK || !raw)
    throw Error(ErrorKind::Internal, "cannot generate an ed25519 SSH host key");
  SshKeyPtr key(raw);
  std::string text = export_private(key.get());

  std::random_device rd;
  std::filesystem::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd());
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw io_error("cannot create", tmp);
    write_all(fd.get(), text, tmp);
    if (::fsync(fd.get()) != 0) throw io_error("cannot sync", tmp);
  }
  int rc = ::link(tmp.c_str(), path.c_str());
  int link_errno = errno;
  ::unlink(tmp.c_str());
  if (rc != 0 && link_errno != EEXIST) {
    errno = link_errno;
    throw io_error("cannot create SSH proxy host key", path);
  }
}

}  // namespace

std::filesystem::path ProxyHostKey::default_dir() { return paths::config_dir(); }

ProxyHostKey ProxyHostKey::load_or_create(const std::filesystem::path& dir, const char* file_name) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) throw Error(ErrorKind::Io, "cannot create " + dir.string() + ": " + ec.message());
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  }
  std::filesystem::path path = dir / file_name;
  if (::access(path.c_str(), F_OK) != 0) create_key_file(path);

  ProxyHostKey k;
  k.private_key_ = read_private_key(path);
  ssh_key raw = nullptr;
  if (ssh_pki_import_privkey_base64(k.private_key_.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK || !raw)
    throw Error(ErrorKind::Io, "SSH proxy host key " + path.string() + " is not a readable unencrypted private key");
  SshKeyPtr key(raw);
  if (ssh_key_type(key.get()) != SSH_KEYTYPE_ED25519)
    throw Error(ErrorKind::Io, "SSH proxy host key " + path.string() + " is not an ed25519 key");
  k.type_ = ssh_key_type_to_char(ssh_key_type(key.get()));
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key.get(), &b64) != SSH_OK || !b64)
    throw Error(ErrorKind::Internal, "cannot export the SSH proxy public key");
  SshCharPtr owned(b64);
  k.public_base64_ = b64;
  k.fingerprint_ = ssh_key_fingerprint(key.get());
  return k;
}

std::vector<std::string> ProxyHostKey::guest_known_hosts(const std::vector<SshAllowedHost>& hosts) const {
  std::vector<std::string> lines;
  // OpenSSH looks up a non-standard port as "[host]:port".
  for (const auto& h : hosts)
    lines.push_back((h.guest_port == 22 ? h.host : "[" + h.host + "]:" + std::to_string(h.guest_port)) + " " +
                    public_key_line());
  return lines;
}

}  // namespace gondolin::egress
