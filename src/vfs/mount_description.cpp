#include "vfs/mount_description.h"

#include <nlohmann/json.hpp>

#include "gondolin/error.h"

namespace gondolin::vfs {
namespace {

using nlohmann::json;

// read_only(hide(host_dir)) is three deep; anything much deeper is not ours.
constexpr int kMaxProviderDepth = 8;
// A memory mount a snapshot may ask for: far beyond any real one, short of absurd.
constexpr std::uint64_t kMaxMemoryBytes = 1ull << 40;
constexpr std::uint64_t kMaxMemoryFiles = 1ull << 32;

// A memory provider under a wrapper (read_only, hide): its description could
// rebuild it, but its files would not come along (MountSet saves the
// contents of top-level memory mounts only).
bool wraps_memory(const json& d) {
  if (!d.is_object() || !d.contains("inner")) return false;
  const json& inner = d["inner"];
  return (inner.is_object() && inner.value("kind", "") == "memory") || wraps_memory(inner);
}

std::shared_ptr<Provider> provider_from(const json& d, const std::string& origin, const std::string& guest_path,
                                        int depth) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::Usage, origin + ": the mount at " + guest_path + " is described wrongly: " + why);
  };
  if (depth > kMaxProviderDepth || !d.is_object()) throw bad("not a provider description");
  const std::string kind = d.value("kind", "");
  if (kind == "host_dir") {
    if (!d.contains("root") || !d["root"].is_string()) throw bad("host_dir without a root");
    std::filesystem::path root = d["root"].get<std::string>();
    if (!root.is_absolute()) throw bad("host_dir root is not absolute");
    HostDirOptions o;
    o.guest_uid = d.value("guest_uid", 0u);
    o.guest_gid = d.value("guest_gid", 0u);
    try {
      return host_dir(root, o);
    } catch (const Error& e) {
      throw Error(ErrorKind::Usage, origin + " mounts host directory " + root.string() + " at " + guest_path +
                                        ", which cannot be opened any more (" + e.what() + ")");
    }
  }
  if (kind == "memory") {
    MemoryOptions o;
    o.max_bytes = d.value("max_bytes", o.max_bytes);
    o.max_files = d.value("max_files", o.max_files);
    if (o.max_bytes > kMaxMemoryBytes || o.max_files > kMaxMemoryFiles) throw bad("memory limits out of range");
    return memory(o);
  }
  if (!d.contains("inner")) throw bad("unknown provider kind '" + kind + "'");
  auto inner = provider_from(d["inner"], origin, guest_path, depth + 1);
  if (kind == "read_only") return read_only(std::move(inner));
  if (kind == "hide") {
    if (!d.contains("globs") || !d["globs"].is_array()) throw bad("hide without globs");
    std::vector<std::string> globs;
    for (const auto& g : d["globs"]) {
      if (!g.is_string()) throw bad("hide globs must be strings");
      globs.push_back(g.get<std::string>());
    }
    return hide(std::move(inner), std::move(globs));
  }
  throw bad("unknown provider kind '" + kind + "'");
}

}  // namespace

std::string describe_mounts(const std::vector<Mount>& mounts) {
  json out = json::array();
  for (const auto& m : mounts) {
    std::string provider = m.provider ? m.provider->describe() : std::string();
    if (!provider.empty() && wraps_memory(json::parse(provider, nullptr, false))) provider.clear();
    if (provider.empty())
      throw Error(ErrorKind::Usage,
                  "the mount at " + m.guest_path +
                      " cannot be part of a snapshot: its contents live in this process (a custom provider, "
                      "or a memory one inside read_only/hide), not in the guest or on disk; keep such data in "
                      "the guest's own file system (it is saved), a plain memory mount or a --mount-hostfs "
                      "directory");
    out.push_back({{"guest_path", m.guest_path},
                   {"provider", json::parse(provider)},
                   {"entry_timeout_ms", m.options.entry_timeout.count()},
                   {"attr_timeout_ms", m.options.attr_timeout.count()},
                   {"keep_cache", m.options.keep_cache},
                   {"writeback_cache", m.options.writeback_cache},
                   {"direct_io", m.options.direct_io},
                   {"transport", transport_name(m.options.transport)}});
  }
  return out.dump();
}

std::vector<Mount> mounts_from_description(const std::string& text, const std::string& origin) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_array()) throw Error(ErrorKind::Usage, origin + ": mounts must be a JSON array");
  std::vector<Mount> out;
  for (const auto& d : doc) {
    if (!d.is_object() || !d.contains("guest_path") || !d["guest_path"].is_string() || !d.contains("provider"))
      throw Error(ErrorKind::Usage, origin + ": a mount has no guest path or provider");
    Mount m;
    m.guest_path = d["guest_path"].get<std::string>();
    try {
      m.options.entry_timeout = std::chrono::milliseconds(d.value("entry_timeout_ms", 1000));
      m.options.attr_timeout = std::chrono::milliseconds(d.value("attr_timeout_ms", 1000));
      m.options.keep_cache = d.value("keep_cache", true);
      m.options.writeback_cache = d.value("writeback_cache", false);
      m.options.direct_io = d.value("direct_io", false);
      const std::string transport = d.value("transport", "serial");  // snapshots before virtio-fs had none
      std::optional<FsTransport> t = transport_from_name(transport);
      if (!t)
        throw Error(ErrorKind::Usage,
                    origin + ": the mount at " + m.guest_path + " has unknown transport '" + transport + "'");
      m.options.transport = *t;
    } catch (const json::exception&) {
      throw Error(ErrorKind::Usage, origin + ": the mount at " + m.guest_path + " has malformed options");
    }
    if (m.options.entry_timeout.count() < 0 || m.options.attr_timeout.count() < 0)
      throw Error(ErrorKind::Usage, origin + ": the mount at " + m.guest_path + " has a negative timeout");
    try {
      m.provider = provider_from(d["provider"], origin, m.guest_path, 0);
    } catch (const json::exception&) {
      throw Error(ErrorKind::Usage, origin + ": the mount at " + m.guest_path + " has a malformed provider");
    }
    out.push_back(std::move(m));
  }
  return out;
}

const char* transport_name(FsTransport transport) { return transport == FsTransport::Virtiofs ? "virtiofs" : "serial"; }

std::optional<FsTransport> transport_from_name(std::string_view name) {
  if (name == "virtiofs") return FsTransport::Virtiofs;
  if (name == "serial") return FsTransport::Serial;
  return std::nullopt;
}

}  // namespace gondolin::vfs
