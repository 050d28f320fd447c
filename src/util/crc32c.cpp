#include "util/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "util/hex.h"

namespace gondolin {
namespace {

constexpr std::uint32_t kReflectedPolynomial = 0x82f63b78;

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? kReflectedPolynomial : 0);
    t[i] = c;
  }
  return t;
}

constexpr std::array<std::uint32_t, 256> kTable = make_table();

// Both paths work on the register form (inverted before and after).
std::uint32_t table_update(std::uint32_t reg, const unsigned char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) reg = (reg >> 8) ^ kTable[(reg ^ p[i]) & 0xff];
  return reg;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t sse42_update(std::uint32_t reg, const unsigned char* p, std::size_t n) {
  std::uint64_t wide = reg;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, sizeof word);
    wide = _mm_crc32_u64(wide, word);
  }
  reg = static_cast<std::uint32_t>(wide);
  for (; n > 0; ++p, --n) reg = _mm_crc32_u8(reg, *p);
  return reg;
}

bool have_sse42() {
  // Asked on first use, not during static initialisation (where the CPU
  // model may not be filled in yet).
  static const bool have = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return have;
}
#endif

}  // namespace

std::uint32_t crc32c_extend(std::uint32_t crc, std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
#if defined(__x86_64__)
  if (have_sse42()) return ~sse42_update(~crc, p, data.size());
#endif
  return ~table_update(~crc, p, data.size());
}

std::uint32_t crc32c_extend_portable(std::uint32_t crc, std::string_view data) {
  return ~table_update(~crc, reinterpret_cast<const unsigned char*>(data.data()), data.size());
}

std::string crc32c_hex(std::uint32_t crc) {
  const char big_endian[4] = {static_cast<char>(crc >> 24), static_cast<char>(crc >> 16), static_cast<char>(crc >> 8),
                              static_cast<char>(crc)};
  return lower_hex(std::string_view(big_endian, sizeof big_endian));
}

}  // namespace gondolin
