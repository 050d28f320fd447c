// Container images made by tests: an OCI image layout directory or a
// `docker save` archive, from layers given as tar entries.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "image/tar_writer.h"
#include "util/files.h"
#include "util/sha256.h"

namespace gondolin::testing {

struct OciFixture {
  std::vector<std::vector<TarEntry>> layers;
  TarWriter::Compression compression = TarWriter::Compression::Gzip;  // the layout's blobs
  nlohmann::json config = nlohmann::json::object();                   // "config": Env, WorkingDir, User
  std::string architecture = "amd64";
  std::string ref = "latest";

  static std::string tar(const std::vector<TarEntry>& entries, TarWriter::Compression c) {
    TarWriter w(c);
    for (const auto& e : entries) w.add(e);
    return w.finish();
  }

  nlohmann::json config_json() const {
    nlohmann::json diff_ids = nlohmann::json::array();
    for (const auto& l : layers) diff_ids.push_back("sha256:" + sha256_hex(tar(l, TarWriter::Compression::None)));
    return {{"architecture", architecture},
            {"os", "linux"},
            {"config", config},
            {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  }

  // Writes blob `data` under dir/blobs/sha256 and returns its descriptor.
  static nlohmann::json put_blob(const std::filesystem::path& dir, const std::string& data, const std::string& type) {
    std::string hex = sha256_hex(data);
    std::filesystem::create_directories(dir / "blobs/sha256");
    write_file_atomic(dir / "blobs/sha256" / hex, data);
    return {{"mediaType", type}, {"digest", "sha256:" + hex}, {"size", data.size()}};
  }

  // An OCI image layout; returns the manifest's digest.
  std::string write_layout(const std::filesystem::path& dir) const {
    std::filesystem::create_directories(dir);
    nlohmann::json layer_descs = nlohmann::json::array();
    const char* type = compression == TarWriter::Compression::Gzip   ? "application/vnd.oci.image.layer.v1.tar+gzip"
                       : compression == TarWriter::Compression::Zstd ? "application/vnd.oci.image.layer.v1.tar+zstd"
                                                                     : "application/vnd.oci.image.layer.v1.tar";
    for (const auto& l : layers) layer_descs.push_back(put_blob(dir, tar(l, compression), type));
    nlohmann::json manifest{{"schemaVersion", 2},
                            {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                            {"config", put_blob(dir, config_json().dump(), "application/vnd.oci.image.config.v1+json")},
                            {"layers", layer_descs}};
    nlohmann::json desc = put_blob(dir, manifest.dump(), "application/vnd.oci.image.manifest.v1+json");
    desc["annotations"] = {{"org.opencontainers.image.ref.name", ref}};
    write_file_atomic(dir / "index.json", nlohmann::json{{"schemaVersion", 2}, {"manifests", {desc}}}.dump());
    write_file_atomic(dir / "oci-layout", R"({"imageLayoutVersion": "1.0.0"})");
    return desc["digest"].get<std::string>();
  }

  // A `docker save` archive (the classic layout: <id>/layer.tar, <sha>.json).
  std::string docker_save(const std::string& repo_tag) const {
    TarWriter out;
    nlohmann::json layer_paths = nlohmann::json::array();
    for (std::size_t i = 0; i < layers.size(); ++i) {
      std::string id = sha256_hex("layer" + std::to_string(i));
      out.add(TarEntry::dir(id));
      out.add(TarEntry::file(id + "/layer.tar", tar(layers[i], TarWriter::Compression::None)));
      layer_paths.push_back(id + "/layer.tar");
    }
    std::string config_text = config_json().dump();
    std::string config_name = sha256_hex(config_text) + ".json";
    out.add(TarEntry::file(config_name, config_text));
    nlohmann::json manifest =
        nlohmann::json::array({{{"Config", config_name}, {"RepoTags", {repo_tag}}, {"Layers", layer_paths}}});
    out.add(TarEntry::file("manifest.json", manifest.dump()));
    return out.finish();
  }
};

}  // namespace gondolin::testing
