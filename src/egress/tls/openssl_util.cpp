#include "egress/tls/openssl_util.h"

#include <openssl/err.h>

namespace gondolin::egress {

std::string openssl_error_text(const std::string& fallback) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return fallback;
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

}  // namespace gondolin::egress
