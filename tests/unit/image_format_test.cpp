#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "gondolin/error.h"
#include "gondolin/image.h"
#include "image/build_spec.h"
#include "image/cpio_writer.h"
#include "image/kernel_image.h"

using namespace gondolin;

namespace {

std::string manifest_json(const std::string& override_key = "", const std::string& override_value = "") {
  std::string sha(64, 'a');
  std::map<std::string, std::string> fields{
      {"schema", "1"},
      {"id", "\"0123456789abcdef\""},
      {"name", "\"t\""},
      {"tag", "\"latest\""},
      {"arch", "\"x86_64\""},
      {"created", "\"2026-01-01T00:00:00Z\""},
      {"kernel_release", "\"6.1\""},
      {"kernel_format", "\"elf\""},
      {"rootfs_format", "\"ext4\""},
      {"kernel", "{\"file\":\"kernel\",\"sha256\":\"" + sha + "\",\"size\":1}"},
      {"initramfs", "{\"file\":\"initramfs.cpio\",\"sha256\":\"" + sha + "\",\"size\":1}"},
      {"rootfs", "{\"file\":\"rootfs.ext4\",\"sha256\":\"" + sha + "\",\"size\":1}"},
      {"cmdline", "\"quiet\""},
      {"agent_protocol", "1"},
  };
  if (!override_key.empty()) {
    if (override_value.empty())
      fields.erase(override_key);
    else
      fields[override_key] = override_value;
  }
  std::string out = "{";
  for (const auto& [k, v] : fields) out += (out.size() > 1 ? "," : "") + std::string("\"") + k + "\":" + v;
  return out + "}";
}

std::string error_of(const std::string& json) {
  try {
    ImageManifest::parse(json, "m.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Image);
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ImageManifest, ParsesAndRoundTrips) {
  ImageManifest m = ImageManifest::parse(manifest_json(), "m.json");
  EXPECT_EQ(m.id, "0123456789abcdef");
  EXPECT_EQ(m.kernel.file, "kernel");
  ImageManifest again = ImageManifest::parse(m.to_json(), "again");
  EXPECT_EQ(again.to_json(), m.to_json());
}

TEST(ImageManifest, OciDefaultsRoundTripAndAreIdentity) {
  ImageManifest m = ImageManifest::parse(manifest_json(), "m.json");
  std::string plain_id = m.compute_id();
  m.workdir = "/srv";
  m.user = GuestUser{1000, 100};
  m.oci_digest = "sha256:" + std::string(64, 'a');
  ImageManifest again = ImageManifest::parse(m.to_json(), "again");
  EXPECT_EQ(again.workdir, "/srv");
  EXPECT_EQ(again.user, (GuestUser{1000, 100}));
  EXPECT_EQ(again.oci_digest, m.oci_digest);
  EXPECT_NE(again.compute_id(), plain_id);
  EXPECT_NE(error_of(manifest_json("workdir", "\"relative\"")).find("workdir must be"), std::string::npos);
  EXPECT_NE(error_of(manifest_json("user", "{\"uid\": -1, \"gid\": 0}")).find("user must be"), std::string::npos);
}

TEST(ImageManifest, ErrorsNameTheProblem) {
  EXPECT_NE(error_of("{not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(manifest_json("schema", "2")).find("unsupported schema"), std::string::npos);
  EXPECT_NE(error_of(manifest_json("kernel", "")).find("missing field \"kernel\""), std::string::npos);
  EXPECT_NE(error_of(manifest_json("arch", "\"aarch64\"")).find("cannot run"), std::string::npos);
  EXPECT_NE(error_of(manifest_json("id", "\"XYZ\"")).find("id must be"), std::string::npos);
}

TEST(ImageManifest, FileNamesCannotLeaveTheImageDirectory) {
  std::string sha(64, 'a');
  for (const char* name : {"../../etc/passwd", "/etc/passwd", "..", "a/b"}) {
    auto json =
        manifest_json("rootfs", std::string("{\"file\":\"") + name + "\",\"sha256\":\"" + sha + "\",\"size\":1}");
    EXPECT_NE(error_of(json).find("plain file name"), std::string::npos) << name;
  }
}

TEST(BuildSpec, StrictAboutKeysAndNames) {
  EXPECT_NO_THROW(BuildSpec::parse(R"({"packages": ["curl", "python3"], "modules": ["virtio_net"]})", "s"));
  EXPECT_THROW(BuildSpec::parse(R"({"pakages": ["curl"]})", "s"), Error);
  EXPECT_THROW(BuildSpec::parse(R"({"packages": ["curl; rm -rf /"]})", "s"), Error);
  EXPECT_THROW(BuildSpec::parse(R"({"packages": ["--option"]})", "s"), Error);
  EXPECT_THROW(BuildSpec::parse(R"({"variant": "huge"})", "s"), Error);
  EXPECT_THROW(BuildSpec::parse(R"({"apt_sources": ["relative.list"]})", "s"), Error);
  EXPECT_THROW(BuildSpec::parse(R"([1,2])", "s"), Error);
}

TEST(BuildSpec, EnvAndPostBuild) {
  auto s = BuildSpec::parse(
      R"({"env": {"A": "1", "B_2": "x y"}, "post_build": {"commands": ["true"], "copy": [{"src": ".", "dest": "/opt/x"}]}})",
      "s", "/tmp");
  EXPECT_EQ(s.env, (std::vector<std::pair<std::string, std::string>>{{"A", "1"}, {"B_2", "x y"}}));
  EXPECT_EQ(s.commands, std::vector<std::string>{"true"});
  ASSERT_EQ(s.copies.size(), 1u);
  EXPECT_EQ(s.copies[0].src, std::filesystem::path("/tmp/."));
  EXPECT_EQ(s.copies[0].dest, "/opt/x");
  EXPECT_FALSE(BuildSpec::parse("{}", "s").modules.empty()) << "the boot modules by default";
  for (const char* bad : {R"({"env": {"1A": "x"}})", R"({"env": {"A": 1}})", R"({"env": ["A=1"]})",
                          R"({"post_build": {"copy": [{"src": ".", "dest": "relative"}]}})",
                          R"({"post_build": {"copy": [{"src": ".", "dest": "/a/../b"}]}})",
                          R"({"post_build": {"copy": [{"src": "/nonexistent-xyz", "dest": "/a"}]}})",
                          R"({"post_build": {"commands": [1]}})", R"({"post_build": []})"})
    EXPECT_THROW(BuildSpec::parse(bad, "s", "/tmp"), Error) << bad;
}

TEST(BuildSpec, OciSource) {
  auto s = BuildSpec::parse(R"({"oci": {"layout": ".", "ref": "1.4"}, "env": {"A": "1"}})", "s", "/tmp");
  ASSERT_TRUE(s.oci.has_value());
  EXPECT_EQ(s.oci->layout, std::filesystem::path("/tmp/."));
  EXPECT_EQ(s.oci->ref, "1.4");
  EXPECT_TRUE(s.oci->archive.empty());
  auto error_of = [](const char* text) {
    try {
      BuildSpec::parse(text, "s", "/tmp");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(error_of(R"({"oci": {"layout": ".", "archive": "x"}})").find("exactly one of"), std::string::npos);
  EXPECT_NE(error_of(R"({"oci": {"ref": "x"}})").find("exactly one of"), std::string::npos);
  EXPECT_NE(error_of(R"({"oci": {"layout": ".", "tag": "x"}})").find("unknown key \"oci.tag\""), std::string::npos);
  EXPECT_NE(error_of(R"({"oci": {"archive": "/nonexistent-xyz.tar"}})").find("does not exist"), std::string::npos);
  EXPECT_NE(error_of(R"({"oci": {"layout": "/nonexistent-xyz"}})").find("is not a directory"), std::string::npos);
  EXPECT_NE(
      error_of(R"({"oci": {"layout": "."}, "packages": ["curl"]})").find("\"packages\" cannot be used with \"oci\""),
      std::string::npos);
  EXPECT_NE(error_of(R"({"oci": {"layout": "."}, "post_build": {"commands": ["true"]}})").find("cannot be used with"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"oci": "app.tar"})").find("\"oci\" must be"), std::string::npos);
}

// The specs shipped in images/ are valid as written.
TEST(BuildSpec, ShippedSpecsParse) {
  auto parse_shipped = [](const char* name) {
    std::filesystem::path path = std::filesystem::path(GONDOLIN_IMAGES_DIR) / name;
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return BuildSpec::parse(text, path.string(), path.parent_path());
  };
  EXPECT_EQ(parse_shipped("debian-base.json").name, "debian-base");
  auto node = parse_shipped("debian-node.json");
  EXPECT_EQ(node.name, "debian-node");
  EXPECT_NE(std::find(node.packages.begin(), node.packages.end(), "npm"), node.packages.end());
}

TEST(CpioWriter, WritesNewcEntries) {
  CpioWriter w;
  w.add_directory("dev");
  w.add_file("init", "abc", 0755);
  std::string a = w.finish();
  ASSERT_EQ(a.substr(0, 6), "070701");
  EXPECT_EQ(a.size() % 4, 0u);
  EXPECT_NE(a.find("init"), std::string::npos);
  EXPECT_NE(a.find("TRAILER!!!"), std::string::npos);
  // filesize field of the second entry ("init") is 3
  auto pos = a.find("070701", 6);
  ASSERT_NE(pos, std::string::npos);
  EXPECT_EQ(a.substr(pos + 6 + 6 * 8, 8), "00000003");
}

TEST(CpioWriter, RefusesAbsolutePaths) {
  CpioWriter w;
  EXPECT_THROW(w.add_file("/init", "x"), Error);
}

TEST(KernelImage, Lz4LegacyDecodesLiteralsAndMatches) {
  // Frame magic, one block: token 0x34 = 3 literals + match of 4+4=8 at offset 3.
  std::string block;
  block += static_cast<char>(0x34);
  block += "abc";
  block += '\x03';
  block += '\x00';
  block += static_cast<char>(0x10);  // final sequence: 1 literal
  block += "!";
  std::string in = "\x02\x21\x4c\x18";
  std::uint32_t n = static_cast<std::uint32_t>(block.size());
  in.append(reinterpret_cast<const char*>(&n), 4);
  in += block;
  auto out = lz4_legacy_decompress(in, 1 << 20);
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, "abcabcabcab!");
}

TEST(KernelImage, Lz4RejectsBadOffsetsAndOverruns) {
  std::string in = "\x02\x21\x4c\x18";
  std::string block = std::string(1, static_cast<char>(0x14)) + "a" + std::string("\x09\x00", 2) + "\x00";
  std::uint32_t n = static_cast<std::uint32_t>(block.size());
  in.append(reinterpret_cast<const char*>(&n), 4);
  in += block;
  EXPECT_FALSE(lz4_legacy_decompress(in, 1 << 20)) << "offset beyond output";

  // One literal, then a 784-byte match at offset 1: more than the 100-byte cap.
  std::string many = "\x02\x21\x4c\x18";
  std::string blk =
      std::string(1, static_cast<char>(0x1f)) + "a" + std::string("\x01\x00", 2) + std::string("\xff\xff\xff\x00", 4);
  n = static_cast<std::uint32_t>(blk.size());
  many.append(reinterpret_cast<const char*>(&n), 4);
  many += blk;
  EXPECT_FALSE(lz4_legacy_decompress(many, 100)) << "output cap";
}

TEST(KernelImage, NotABzImage) {
  EXPECT_FALSE(find_bzimage_payload(std::string(4096, 'x')));
  EXPECT_FALSE(is_pvh_elf("not an elf"));
}
