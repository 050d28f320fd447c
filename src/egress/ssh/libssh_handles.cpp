#include "egress/ssh/libssh_handles.h"

namespace gondolin::egress {

std::string ssh_error_line(void* handle) {
  const char* e = handle ? ssh_get_error(handle) : nullptr;
  std::string s = (e && *e) ? e : "unknown error";
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

std::string ssh_key_fingerprint(ssh_key key) {
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != 0) return {};
  char* text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  if (!text) return {};
  std::string out = text;
  ssh_string_free_char(text);
  return out;
}

}  // namespace gondolin::egress
