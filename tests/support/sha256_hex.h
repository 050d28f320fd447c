// SHA-256 of a string, lower-case hex: what the test upstream's /digest
// reports for each value it received.
#pragma once

#include <openssl/sha.h>

#include <string>

namespace gondolin::testing {

inline std::string sha256_hex(const std::string& data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : md) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace gondolin::testing
