// The proxy's own SSH host key: the only key the guest ever sees. One ed25519
// key per user, created on first use (mode 0600) and reused, so a guest's
// known_hosts entry stays valid across runs.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "gondolin/ssh_options.h"

namespace gondolin::egress {

class ProxyHostKey {
 public:
  static constexpr const char* kFileName = "ssh_host_ed25519_key";

  // $XDG_CONFIG_HOME/gondolin (default ~/.config/gondolin).
  static std::filesystem::path default_dir();

  // Loads DIR/FILE_NAME, creating DIR (0700) and the key (0600) the first
  // time; concurrent first runs agree on one key. Throws gondolin::Error (Io)
  // if the key cannot be created or read, or if it is readable by group or
  // others. (Also how host -> guest SSH makes its per-session key pairs.)
  static ProxyHostKey load_or_create(const std::filesystem::path& dir, const char* file_name = kFileName);

  const std::string& private_key_openssh() const { return private_key_; }  // for the server side only
  const std::string& key_type() const { return type_; }                    // "ssh-ed25519"
  const std::string& public_key_base64() const { return public_base64_; }  // the key blob
  const std::string& fingerprint() const { return fingerprint_; }          // "SHA256:..."

  // "TYPE BASE64" as in a .pub file.
  std::string public_key_line() const { return type_ + " " + public_base64_; }

  // What the guest's known_hosts needs so `ssh HOST` / `git clone git@HOST:...`
  // trusts the proxy without a prompt: one line per allowed host (the guest
  // dials port 22, so plain host names).
  std::vector<std::string> guest_known_hosts(const std::vector<SshAllowedHost>& hosts) const;

 private:
  std::string private_key_;
  std::string type_;
  std::string public_base64_;
  std::string fingerprint_;
};

}  // namespace gondolin::egress
