#include "util/random_hex.h"

#include <openssl/rand.h>

#include <vector>

#include "gondolin/error.h"
#include "util/hex.h"

namespace gondolin {

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
    throw Error(ErrorKind::Internal, "no randomness for an identifier");
  return lower_hex(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
}

}  // namespace gondolin
