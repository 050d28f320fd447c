// Files a user (or another tool) hands us: image manifests, image build specs
// and snapshot manifests. Bad input must be a gondolin::Error, nothing else.
#include <cstddef>
#include <cstdint>
#include <string>

#include "gondolin/error.h"
#include "gondolin/image.h"
#include "image/build_spec.h"
#include "session/snapshot_manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the parser, the rest is the document.
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (data[0] % 3) {
      case 0: {
        auto m = gondolin::ImageManifest::parse(text, "fuzz");
        (void)gondolin::ImageManifest::parse(m.to_json(), "fuzz-roundtrip");
        break;
      }
      case 1: (void)gondolin::BuildSpec::parse(text, "fuzz"); break;
      case 2: {
        auto m = gondolin::session::SnapshotManifest::parse(text, "fuzz");
        (void)gondolin::session::SnapshotManifest::parse(m.to_json(), "fuzz-roundtrip");
        break;
      }
    }
  } catch (const gondolin::Error&) {}
  return 0;
}
