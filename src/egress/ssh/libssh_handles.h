// Owning handles for libssh objects, so every exit path frees them.
#pragma once

#include <libssh/libssh.h>
#include <libssh/server.h>

#include <memory>
#include <string>

namespace gondolin::egress {

struct SshSessionFree {
  void operator()(ssh_session s) const { ssh_free(s); }
};
struct SshBindFree {
  void operator()(ssh_bind b) const { ssh_bind_free(b); }
};
struct SshKeyFree {
  void operator()(ssh_key k) const { ssh_key_free(k); }
};
struct SshEventFree {
  void operator()(ssh_event e) const { ssh_event_free(e); }
};
struct SshCharFree {
  void operator()(char* p) const { ssh_string_free_char(p); }
};

using SshSessionPtr = std::unique_ptr<ssh_session_struct, SshSessionFree>;
using SshBindPtr = std::unique_ptr<ssh_bind_struct, SshBindFree>;
using SshKeyPtr = std::unique_ptr<ssh_key_struct, SshKeyFree>;
using SshEventPtr = std::unique_ptr<ssh_event_struct, SshEventFree>;
using SshCharPtr = std::unique_ptr<char, SshCharFree>;

// libssh's last error for `handle` (session or bind) as one line.
std::string ssh_error_line(void* handle);

// "SHA256:..." as OpenSSH prints it; empty if the key cannot be hashed.
std::string ssh_key_fingerprint(ssh_key key);

}  // namespace gondolin::egress
