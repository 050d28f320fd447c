// OCI image layers (image/layer_unpacker.h): any bytes, applied onto a fresh
// root. The unpacker must refuse or apply, never crash, and never create
// anything outside the root (a sibling directory is checked each run).
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "image/layer_unpacker.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const fs::path base = [] {
    std::string tmpl = (fs::temp_directory_path() / "gondolin-fuzz-layer-XXXXXX").string();
    return fs::path(::mkdtemp(tmpl.data()));
  }();
  const fs::path root = base / "root", sibling = base / "sibling";
  fs::remove_all(root);
  fs::create_directories(root);
  fs::create_directories(sibling);
  gondolin::LayerUnpacker unpacker(root, gondolin::LayerLimits{16u << 20, 20000});
  // Twice: the second pass meets the first one's symlinks and directories.
  (void)unpacker.apply_memory(data, size, "layer 1");
  (void)unpacker.apply_memory(data, size, "layer 2");
  if (!fs::is_empty(sibling) || fs::exists(base / "escaped")) __builtin_trap();
  return 0;
}
