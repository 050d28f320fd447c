// The one exception type the library throws. Its message is a single line a
// user can act on; its kind tells the CLI which exit status to use.
#pragma once

#include <stdexcept>
#include <string>

namespace gondolin {

enum class ErrorKind {
  Usage,     // bad flags, options or arguments
  Image,     // missing, corrupt or incompatible guest image
  Qemu,      // QEMU missing or failed
  Guest,     // the guest or its agent misbehaved or went away
  Policy,    // a policy file or rule is invalid
  Io,        // host file system or OS error
  Internal,  // a bug in gondolin
};

const char* to_string(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace gondolin
