#include "image/oci_image.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <set>

#include "gondolin/error.h"
#include "image/layer_unpacker.h"
#include "util/hex.h"
#include "util/sha256.h"

namespace gondolin {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::size_t kMaxJson = 16u << 20;

const std::set<std::string> kLayerTypes{
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
};
const std::set<std::string> kIndexTypes{"application/vnd.oci.image.index.v1+json",
                                        "application/vnd.docker.distribution.manifest.list.v2+json"};

// `rel` under the directory `dirfd`, resolved as if that were "/": no name,
// "..", or symlink (absolute or relative) leads out of it.
UniqueFd open_in_root(int dirfd, const std::string& rel, int flags) {
  struct open_how how {};
  how.flags = static_cast<__u64>(static_cast<unsigned>(flags | O_CLOEXEC));
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return UniqueFd(static_cast<int>(::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how)));
}

// A directory whose files are opened by name without ever leaving it.
class ConfinedDir {
 public:
  ConfinedDir(const fs::path& dir, std::string label) : label_(std::move(label)) {
    fd_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd_) fail(std::string("cannot open it: ") + std::strerror(errno));
  }
  [[noreturn]] void fail(const std::string& what) const { throw Error(ErrorKind::Image, label_ + ": " + what); }

  UniqueFd open(const std::string& rel, bool required = true) const {
    UniqueFd fd = open_in_root(fd_.get(), rel, O_RDONLY);
    struct stat st {};
    if (fd && (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))) fd.reset();
    if (!fd && required) fail("no file " + rel);
    return fd;
  }

  std::optional<json> read_json(const std::string& rel, bool required = true) const {
    UniqueFd fd = open(rel, required);
    if (!fd) return std::nullopt;
    return parse(read_all(fd.get(), rel), rel);
  }

  json parse(const std::string& text, const std::string& rel) const {
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_structured()) fail(rel + " is not valid JSON");
    return doc;
  }

  std::string read_all(int fd, const std::string& rel) const {
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("cannot read " + rel + ": " + std::strerror(errno));
      if (n == 0) break;
      out.append(buf, static_cast<std::size_t>(n));
      if (out.size() > kMaxJson) fail(rel + " is larger than 16 MiB");
    }
    return out;
  }

  // The blob a descriptor names, checked against its size and sha256.
  UniqueFd blob(const json& desc, const std::string& what, std::string* digest_out = nullptr) const {
    if (!desc.is_object() || !desc.contains("digest") || !desc["digest"].is_string() || !desc.contains("size") ||
        !desc["size"].is_number_unsigned())
      fail(what + " is not a descriptor with a digest and a size");
    std::string digest = desc["digest"].get<std::string>();
    if (digest.rfind("sha256:", 0) != 0 || !is_lower_hex(std::string_view(digest).substr(7), 64))
      fail(what + " has digest \"" + digest.substr(0, 80) + "\" (only sha256 digests are accepted)");
    std::string rel = "blobs/sha256/" + digest.substr(7);
    UniqueFd fd = open(rel);
    struct stat st {};
    ::fstat(fd.get(), &st);
    if (static_cast<std::uint64_t>(st.st_size) != desc["size"].get<std::uint64_t>())
      fail(what + " " + rel + " is " + std::to_string(st.st_size) + " bytes, its descriptor says " +
           std::to_string(desc["size"].get<std::uint64_t>()));
    if (sha256_file_hex("/proc/self/fd/" + std::to_string(fd.get())) != digest.substr(7))
      fail(what + " " + rel + " does not match its digest " + digest);
    if (digest_out) *digest_out = digest;
    return fd;
  }

  json blob_json(const json& desc, const std::string& what, std::string* digest_out = nullptr) const {
    UniqueFd fd = blob(desc, what, digest_out);
    ::lseek(fd.get(), 0, SEEK_SET);
    return parse(read_all(fd.get(), what), what);
  }

 private:
  UniqueFd fd_;
  std::string label_;
};

std::string string_at(const json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Env, WorkingDir, User and the platform from an image config.
void read_config(const ConfinedDir& dir, const json& config, OciImage& img) {
  if (!config.is_object()) dir.fail("the image config is not an object");
  std::string arch = string_at(config, "architecture"), os = string_at(config, "os");
  if ((!os.empty() && os != "linux") || (!arch.empty() && arch != "amd64"))
    dir.fail("the image is for " + os + "/" + arch + "; gondolin runs linux/amd64 guests here");
  auto c = config.find("config");
  if (c == config.end() || c->is_null()) return;
  if (!c->is_object()) dir.fail("the image config's \"config\" is not an object");
  img.workdir = string_at(*c, "WorkingDir");
  img.user = string_at(*c, "User");
  if (!img.workdir.empty() && img.workdir[0] != '/') img.workdir = "/" + img.workdir;
  if (img.workdir.size() > 4096 || img.workdir.find('\0') != std::string::npos)
    dir.fail("the image config's WorkingDir is not a usable path");
  if (auto env = c->find("Env"); env != c->end() && env->is_array()) {
    for (const auto& kv : *env) {
      std::string s = kv.is_string() ? kv.get<std::string>() : std::string();
      std::size_t eq = s.find('=');
      if (eq == 0 || eq == std::string::npos || s.find('\0') != std::string::npos || img.env.size() >= 256)
        dir.fail("the image config has a bad Env entry \"" + s.substr(0, 80) + "\"");
      img.env.emplace_back(s.substr(0, eq), s.substr(eq + 1));
    }
  }
}

// An image index: the entry named `ref`, or for a platform list linux/amd64.
json pick_from_index(const ConfinedDir& dir, const json& index, const std::string& ref, const std::string& what) {
  auto m = index.find("manifests");
  if (m == index.end() || !m->is_array() || m->empty()) dir.fail(what + " lists no images");
  std::vector<json> hits;
  std::string names;
  for (const auto& d : *m) {
    if (!d.is_object()) dir.fail(what + " has an entry that is not an object");
    std::string name;
    std::string full;  // containerd's (and docker save's) full name, e.g. "docker.io/library/app:1"
    if (auto a = d.find("annotations"); a != d.end() && a->is_object()) {
      name = string_at(*a, "org.opencontainers.image.ref.name");
      full = string_at(*a, "io.containerd.image.name");
    }
    if (!name.empty()) names += (names.empty() ? "" : ", ") + name;
    if (auto p = d.find("platform"); ref.empty() && p != d.end() && p->is_object()) {
      if (string_at(*p, "os") == "linux" && string_at(*p, "architecture") == "amd64") hits.push_back(d);
    } else if (ref.empty() || name == ref || (!full.empty() && full == ref)) {
      hits.push_back(d);
    }
  }
  if (hits.empty()) dir.fail("no image named \"" + ref + "\"" + (names.empty() ? "" : " (it has: " + names + ")"));
  if (hits.size() > 1)
    dir.fail("holds " + std::to_string(hits.size()) + " images; name one with \"ref\" (" + names + ")");
  return hits.front();
}

OciImage read_layout(const ConfinedDir& dir, const std::string& ref) {
  json layout = *dir.read_json("oci-layout");
  if (!layout.is_object() || string_at(layout, "imageLayoutVersion").rfind("1.", 0) != 0)
    dir.fail("oci-layout does not name image layout version 1.x");
  json desc = pick_from_index(dir, *dir.read_json("index.json"), ref, "index.json");
  OciImage img;
  json manifest;
  for (int depth = 0;; ++depth) {
    std::string digest;
    manifest = dir.blob_json(desc, "the image manifest", &digest);
    std::string type = string_at(desc, "mediaType");
    if (type.empty()) type = string_at(manifest, "mediaType");
    if (!kIndexTypes.count(type) && !manifest.contains("manifests")) {
      img.digest = digest;
      break;
    }
    if (depth == 3) dir.fail("image indexes nest too deep");
    desc = pick_from_index(dir, manifest, "", "the image index " + digest);
  }
  if (!manifest.is_object() || !manifest.contains("layers") || !manifest["layers"].is_array())
    dir.fail("the image manifest " + img.digest + " has no layer list");
  read_config(dir, dir.blob_json(manifest.value("config", json()), "the image config"), img);
  int n = 0;
  for (const auto& d : manifest["layers"]) {
    std::string what = "layer " + std::to_string(++n);
    std::string type = d.is_object() ? string_at(d, "mediaType") : "";
    if (!kLayerTypes.count(type))
      dir.fail(what + " has media type \"" + type.substr(0, 100) + "\", which is not a tar layer gondolin can unpack");
    OciLayer layer;
    layer.fd = dir.blob(d, what, &layer.digest);
    img.layers.push_back(std::move(layer));
  }
  return img;
}

// `docker save`: manifest.json names the config and the layer tars; each
// layer must hash to the config's diff_id (or, stored as blobs/sha256/HEX, to HEX).
OciImage read_docker_save(const ConfinedDir& dir, const json& list, const std::string& ref) {
  if (!list.is_array() || list.empty()) dir.fail("manifest.json lists no images");
  std::vector<const json*> hits;
  for (const auto& e : list) {
    if (!e.is_object()) dir.fail("manifest.json has an entry that is not an object");
    bool named = ref.empty();
    if (auto tags = e.find("RepoTags"); !named && tags != e.end() && tags->is_array())
      for (const auto& t : *tags)
        named = named || (t.is_string() && (t.get<std::string>() == ref || t.get<std::string>() == ref + ":latest"));
    if (named) hits.push_back(&e);
  }
  if (hits.size() != 1)
    dir.fail(hits.empty() ? "no image tagged \"" + ref + "\"" : "holds several images; name one with \"ref\"");
  const json& entry = *hits.front();
  std::string config_rel = string_at(entry, "Config");
  UniqueFd config_fd = dir.open(config_rel.empty() ? "manifest.json/Config" : config_rel);
  std::string config_text = dir.read_all(config_fd.get(), config_rel);
  std::string config_sha = sha256_hex(config_text);
  std::string stem = fs::path(config_rel).stem().string();
  if (is_lower_hex(stem, 64) && stem != config_sha) dir.fail(config_rel + " does not match its digest");
  OciImage img;
  img.digest = "sha256:" + config_sha;
  json config = dir.parse(config_text, config_rel);
  read_config(dir, config, img);
  auto layers = entry.find("Layers");
  json diff_ids = config.is_object() && config.contains("rootfs") && config["rootfs"].is_object()
                      ? config["rootfs"].value("diff_ids", json::array())
                      : json::array();
  if (layers == entry.end() || !layers->is_array() || !diff_ids.is_array() || diff_ids.size() != layers->size())
    dir.fail("manifest.json's Layers do not match the config's rootfs.diff_ids");
  for (std::size_t i = 0; i < layers->size(); ++i) {
    std::string rel = (*layers)[i].is_string() ? (*layers)[i].get<std::string>() : "";
    OciLayer layer;
    layer.fd = dir.open(rel.empty() ? "(unnamed layer)" : rel);
    std::string sha = sha256_file_hex(layer.path());
    std::string name = fs::path(rel).filename().string();
    std::string diff_id = diff_ids[i].is_string() ? diff_ids[i].get<std::string>() : "";
    if (diff_id != "sha256:" + sha && !(is_lower_hex(name, 64) && name == sha))
      dir.fail("layer " + std::to_string(i + 1) + " (" + rel + ") does not match its digest");
    layer.digest = "sha256:" + sha;
    img.layers.push_back(std::move(layer));
  }
  return img;
}

// "name:x:uid:gid:..." lines of a passwd or group file.
std::vector<std::vector<std::string>> colon_records(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::vector<std::string> fields;
    std::string line = text.substr(pos, nl - pos);
    for (std::size_t i = 0;;) {
      std::size_t c = line.find(':', i);
      fields.push_back(line.substr(i, c == std::string::npos ? std::string::npos : c - i));
      if (c == std::string::npos) break;
      i = c + 1;
    }
    if (fields.size() >= 4) out.push_back(std::move(fields));
    pos = nl + 1;
  }
  return out;
}

std::optional<std::uint32_t> as_id(const std::string& s) {
  if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  unsigned long long v = std::stoull(s);
  if (v > 0xfffffffe) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

}  // namespace

bool exists_in_root(const fs::path& root, const std::string& path) {
  UniqueFd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  return dir && open_in_root(dir.get(), path, O_PATH).valid();
}

GuestUser resolve_image_user(const fs::path& root, const std::string& user, std::string& home) {
  ConfinedDir dir(root, "the image's User \"" + user.substr(0, 64) + "\"");
  auto table = [&](const char* rel) {
    UniqueFd fd = dir.open(rel, false);
    return fd ? colon_records(dir.read_all(fd.get(), rel)) : std::vector<std::vector<std::string>>{};
  };
  std::size_t colon = user.find(':');
  std::string name = user.substr(0, colon);
  std::string group = colon == std::string::npos ? "" : user.substr(colon + 1);
  GuestUser out;
  home = "/";
  std::optional<std::uint32_t> primary;
  std::optional<std::uint32_t> uid = as_id(name);
  for (const auto& r : table("etc/passwd")) {
    if (r[0] != name && !(uid && as_id(r[2]) == uid)) continue;
    uid = as_id(r[2]);
    primary = as_id(r[3]);
    if (r.size() >= 6 && !r[5].empty() && r[5][0] == '/') home = r[5];
    break;
  }
  if (!uid) dir.fail("no such user in the image's /etc/passwd");
  out.uid = *uid;
  out.gid = primary.value_or(0);
  if (!group.empty()) {
    std::optional<std::uint32_t> gid = as_id(group);
    for (const auto& r : table("etc/group"))
      if (!gid && r[0] == group) gid = as_id(r[2]);
    if (!gid) dir.fail("no such group in the image's /etc/group");
    out.gid = *gid;
  }
  return out;
}

OciImage read_oci_layout(const fs::path& dir, const std::string& ref) {
  return read_layout(ConfinedDir(dir, "OCI layout " + dir.string()), ref);
}

OciImage read_image_archive(const fs::path& archive, const fs::path& staging, const std::string& ref) {
  std::error_code ec;
  if (!fs::is_regular_file(archive, ec))
    throw Error(ErrorKind::Image, "image archive " + archive.string() + " does not exist");
  LayerUnpacker unpack(staging);
  if (auto bad = unpack.apply_file(archive, "image archive " + archive.string())) throw Error(ErrorKind::Image, *bad);
  ConfinedDir dir(staging, "image archive " + archive.string());
  if (auto list = dir.read_json("manifest.json", false)) return read_docker_save(dir, *list, ref);
  if (dir.open("index.json", false)) return read_layout(dir, ref);
  dir.fail("has neither manifest.json (docker save) nor index.json (OCI layout)");
}

}  // namespace gondolin
