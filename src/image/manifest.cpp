#include <nlohmann/json.hpp>

#include "gondolin/error.h"
#include "gondolin/image.h"
#include "util/hex.h"
#include "util/sha256.h"

namespace gondolin {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& origin, const std::string& what) {
  throw Error(ErrorKind::Image, "invalid image manifest " + origin + ": " + what);
}

const json& field(const json& obj, const char* key, const std::string& origin) {
  auto it = obj.find(key);
  if (it == obj.end()) bad(origin, std::string("missing field \"") + key + "\"");
  return *it;
}

std::string string_field(const json& obj, const char* key, const std::string& origin, bool allow_empty = false) {
  const json& v = field(obj, key, origin);
  if (!v.is_string()) bad(origin, std::string("field \"") + key + "\" must be a string");
  auto s = v.get<std::string>();
  if (!allow_empty && s.empty()) bad(origin, std::string("field \"") + key + "\" is empty");
  return s;
}

// A manifest names files inside its own directory, nothing else.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos && name.size() <= 255;
}

ImageFile file_field(const json& obj, const char* key, const std::string& origin) {
  const json& v = field(obj, key, origin);
  if (!v.is_object()) bad(origin, std::string("field \"") + key + "\" must be an object");
  ImageFile f;
  f.file = string_field(v, "file", origin);
  if (!is_plain_file_name(f.file)) bad(origin, std::string(key) + ".file must be a plain file name");
  f.sha256 = string_field(v, "sha256", origin);
  if (!is_lower_hex(f.sha256, 64)) bad(origin, std::string(key) + ".sha256 is not a lowercase hex SHA-256");
  const json& size = field(v, "size", origin);
  if (!size.is_number_unsigned()) bad(origin, std::string(key) + ".size must be a non-negative integer");
  f.size = size.get<std::uint64_t>();
  return f;
}

json file_json(const ImageFile& f) { return json{{"file", f.file}, {"sha256", f.sha256}, {"size", f.size}}; }

}  // namespace

ImageManifest ImageManifest::parse(const std::string& text, const std::string& origin) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) bad(origin, "not valid JSON");
  if (!doc.is_object()) bad(origin, "top level must be an object");
  const json& schema = field(doc, "schema", origin);
  if (!schema.is_number_integer() || schema.get<int>() != kSchemaVersion)
    bad(origin, "unsupported schema (this gondolin reads schema " + std::to_string(kSchemaVersion) + ")");

  ImageManifest m;
  m.id = string_field(doc, "id", origin);
  if (!is_lower_hex(m.id, 16)) bad(origin, "id must be 16 lowercase hex digits");
  m.name = string_field(doc, "name", origin, true);
  m.tag = string_field(doc, "tag", origin, true);
  m.arch = string_field(doc, "arch", origin);
  if (m.arch != "x86_64") bad(origin, "arch \"" + m.arch + "\" cannot run on this host (x86_64)");
  m.created = string_field(doc, "created", origin, true);
  m.kernel_release = string_field(doc, "kernel_release", origin);
  m.kernel_format = string_field(doc, "kernel_format", origin);
  if (m.kernel_format != "elf" && m.kernel_format != "bzimage") bad(origin, "kernel_format must be elf or bzimage");
  m.rootfs_format = string_field(doc, "rootfs_format", origin);
  if (m.rootfs_format != "ext4") bad(origin, "rootfs_format must be ext4");
  m.kernel = file_field(doc, "kernel", origin);
  m.initramfs = file_field(doc, "initramfs", origin);
  m.rootfs = file_field(doc, "rootfs", origin);
  m.cmdline = string_field(doc, "cmdline", origin, true);
  if (m.cmdline.size() > 2048) bad(origin, "cmdline is too long");
  const json& proto = field(doc, "agent_protocol", origin);
  if (!proto.is_number_unsigned()) bad(origin, "agent_protocol must be a number");
  m.agent_protocol = proto.get<std::uint32_t>();
  if (auto it = doc.find("spec"); it != doc.end()) m.spec_json = it->dump();
  if (auto it = doc.find("env"); it != doc.end()) {
    if (!it->is_object() || it->size() > 256) bad(origin, "env must be an object of at most 256 strings");
    for (const auto& [key, value] : it->items()) {
      if (!value.is_string() || key.empty() || key.find_first_of("=\0") != std::string::npos)
        bad(origin, "env entries must be NAME: string");
      m.env.emplace_back(key, value.get<std::string>());
    }
  }
  m.workdir = doc.contains("workdir") ? string_field(doc, "workdir", origin) : "";
  if (!m.workdir.empty() &&
      (m.workdir[0] != '/' || m.workdir.size() > 4096 || m.workdir.find('\0') != std::string::npos))
    bad(origin, "workdir must be an absolute guest path");
  if (auto it = doc.find("user"); it != doc.end()) {
    if (!it->is_object() || !it->contains("uid") || !it->contains("gid") || !(*it)["uid"].is_number_unsigned() ||
        !(*it)["gid"].is_number_unsigned() || (*it)["uid"].get<std::uint64_t>() > 0xfffffffe ||
        (*it)["gid"].get<std::uint64_t>() > 0xfffffffe)
      bad(origin, "user must be {\"uid\": N, \"gid\": N}");
    m.user = GuestUser{(*it)["uid"].get<std::uint32_t>(), (*it)["gid"].get<std::uint32_t>()};
  }
  m.oci_digest = doc.contains("oci_digest") ? string_field(doc, "oci_digest", origin) : "";
  return m;
}

std::string ImageManifest::to_json() const {
  json doc{
      {"schema", kSchemaVersion},
      {"id", id},
      {"name", name},
      {"tag", tag},
      {"arch", arch},
      {"created", created},
      {"kernel_release", kernel_release},
      {"kernel_format", kernel_format},
      {"rootfs_format", rootfs_format},
      {"kernel", file_json(kernel)},
      {"initramfs", file_json(initramfs)},
      {"rootfs", file_json(rootfs)},
      {"cmdline", cmdline},
      {"agent_protocol", agent_protocol},
  };
  if (!spec_json.empty()) doc["spec"] = json::parse(spec_json, nullptr, false);
  if (!env.empty()) {
    json env_obj = json::object();
    for (const auto& [k, v] : env) env_obj[k] = v;
    doc["env"] = env_obj;
  }
  if (!workdir.empty()) doc["workdir"] = workdir;
  if (user) doc["user"] = json{{"uid", user->uid}, {"gid", user->gid}};
  if (!oci_digest.empty()) doc["oci_digest"] = oci_digest;
  return doc.dump(2) + "\n";
}

std::string ImageManifest::compute_id() const {
  std::string env_key;
  for (const auto& [k, v] : env) env_key += "|" + k + "=" + v;
  // Defaults that change what a command sees are identity too (absent ones
  // add nothing, so older ids stay as they were).
  if (!workdir.empty()) env_key += "|workdir=" + workdir;
  if (user) env_key += "|user=" + std::to_string(user->uid) + ":" + std::to_string(user->gid);
  // The name is part of the identity: the same contents under another
  // name:tag is another image (its files are hard links).
  return sha256_hex(kernel.sha256 + initramfs.sha256 + rootfs.sha256 + cmdline + env_key + "|" + name + ":" + tag)
      .substr(0, 16);
}

std::string Image::display_name() const {
  if (!manifest.name.empty()) return manifest.name + ":" + (manifest.tag.empty() ? "latest" : manifest.tag);
  return manifest.id;
}

}  // namespace gondolin
