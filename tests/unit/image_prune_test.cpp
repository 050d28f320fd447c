#include <gtest/gtest.h>

#include "image/image_prune.h"

using namespace gondolin;

namespace {

Image img(const std::string& id, const std::string& name, std::uint32_t protocol = 4) {
  Image i;
  i.manifest.id = id;
  i.manifest.name = name;
  i.manifest.tag = "latest";
  i.manifest.agent_protocol = protocol;
  return i;
}

std::vector<std::string> ids(const std::vector<Image>& images) {
  std::vector<std::string> out;
  for (const auto& i : images) out.push_back(i.manifest.id);
  return out;
}

}  // namespace

TEST(ImagePrune, KeepsTheNewestBuildOfEachNameAndDeletesTheOlderOnes) {
  // Newest first, as ImageStore::list() returns them.
  std::vector<Image> store{img("a3", "base"), img("b2", "other"), img("a2", "base"), img("a1", "base"),
                           img("b1", "other")};
  EXPECT_EQ(ids(image::images_to_prune(store, {}, 4)), (std::vector<std::string>{"a2", "a1", "b1"}));
}

TEST(ImagePrune, KeepsWhatSnapshotsAndSessionsNeed) {
  std::vector<Image> store{img("a3", "base"), img("a2", "base"), img("a1", "base")};
  EXPECT_EQ(ids(image::images_to_prune(store, {"a1"}, 4)), (std::vector<std::string>{"a2"}));
}

TEST(ImagePrune, KeepsTheNewestBuildThisAgentProtocolCanUse) {
  // a3 was made by a newer gondolin (protocol 5); resolve() picks a2 here, so both stay.
  std::vector<Image> store{img("a3", "base", 5), img("a2", "base", 4), img("a1", "base", 4)};
  EXPECT_EQ(ids(image::images_to_prune(store, {}, 4)), (std::vector<std::string>{"a1"}));
}

TEST(ImagePrune, TagsAreSeparateNamesAndUnnamedImagesAreKept) {
  Image tagged = img("c1", "base");
  tagged.manifest.tag = "v1";
  std::vector<Image> store{img("a2", "base"), tagged, img("a1", "base"), img("u2", ""), img("u1", "")};
  EXPECT_EQ(ids(image::images_to_prune(store, {}, 4)), (std::vector<std::string>{"a1"}));
}
