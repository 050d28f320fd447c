// Kernel packages come from the archive, but a damaged download must not
// crash the image builder: bzImage header parsing, LZ4 legacy decoding, ELF
// note walking.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "image/kernel_image.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto payload = gondolin::find_bzimage_payload(in)) (void)payload->compression.size();
  (void)gondolin::lz4_legacy_decompress(in, 1 << 20);
  (void)gondolin::is_pvh_elf(in);
  return 0;
}
