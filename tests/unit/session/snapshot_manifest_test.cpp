// The snapshot manifest's RAM image digest: CRC-32C as saves write it, and
// SHA-256 as older gondolins wrote it, both read back as they were; a
// manifest with both, neither or a malformed one is refused in one line.
#include "session/snapshot_manifest.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "gondolin/error.h"

using namespace gondolin;
using nlohmann::json;

namespace {

// A manifest of a virtio-fs session, as the fuzz corpus keeps it (its first
// byte picks the fuzzer's parser).
json sample_with_ram_image() {
  std::ifstream in(GONDOLIN_FUZZ_CORPUS_DIR "/fuzz_manifests/snapshot_manifest_ram");
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str().substr(1));
}

std::string refusal(const json& doc) {
  try {
    session::SnapshotManifest::parse(doc.dump(), "s");
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

TEST(SnapshotManifest, OlderSha256RamDigestsAreReadAndWrittenAsTheyWere) {
  json doc = sample_with_ram_image();
  const std::string hex = doc["ram"]["sha256"];
  auto m = session::SnapshotManifest::parse(doc.dump(), "s");
  EXPECT_EQ(m.ram_digest, (RamDigest{"sha256", hex}));
  EXPECT_EQ(json::parse(m.to_json())["ram"]["sha256"], hex);
}

TEST(SnapshotManifest, Crc32cRamDigestsRoundTrip) {
  json doc = sample_with_ram_image();
  doc["ram"].erase("sha256");
  doc["ram"]["crc32c"] = "0a1b2c3d";
  auto m = session::SnapshotManifest::parse(doc.dump(), "s");
  EXPECT_EQ(m.ram_digest, (RamDigest{"crc32c", "0a1b2c3d"}));
  json back = json::parse(m.to_json());
  EXPECT_EQ(back["ram"]["crc32c"], "0a1b2c3d");
  EXPECT_FALSE(back["ram"].contains("sha256"));
}

TEST(SnapshotManifest, MalformedRamDigestsAreOneLineRefusals) {
  json both = sample_with_ram_image();
  both["ram"]["crc32c"] = "0a1b2c3d";
  EXPECT_EQ(refusal(both), "invalid snapshot s: the RAM image has two digests");
  json neither = sample_with_ram_image();
  neither["ram"].erase("sha256");
  EXPECT_EQ(refusal(neither), "invalid snapshot s: the RAM image has no digest (crc32c or sha256)");
  json short_crc = neither;
  short_crc["ram"]["crc32c"] = "0a1b2c";
  EXPECT_EQ(refusal(short_crc), "invalid snapshot s: bad RAM image crc32c");
  json upper = neither;
  upper["ram"]["crc32c"] = "0A1B2C3D";
  EXPECT_EQ(refusal(upper), "invalid snapshot s: bad RAM image crc32c");
  json number = neither;
  number["ram"]["crc32c"] = 12345678;
  EXPECT_EQ(refusal(number), "invalid snapshot s: field \"crc32c\" has the wrong type");
}

}  // namespace
