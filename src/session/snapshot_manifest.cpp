#include "session/snapshot_manifest.h"

#include <nlohmann/json.hpp>

#include "gondolin/error.h"
#include "gondolin/vm.h"
#include "util/hex.h"
#include "vfs/mount_description.h"

namespace gondolin::session {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& origin, const std::string& what) {
  throw Error(ErrorKind::Usage, "invalid snapshot " + origin + ": " + what);
}

template <typename T>
T get(const json& doc, const char* key, const std::string& origin) {
  auto it = doc.find(key);
  if (it == doc.end()) bad(origin, std::string("missing field \"") + key + "\"");
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    bad(origin, std::string("field \"") + key + "\" has the wrong type");
  }
}

// Every key optional (older snapshots lack some); present ones must fit.
SnapshotNetwork parse_network(const json& net, const std::string& origin) {
  if (!net.is_object()) bad(origin, "network must be an object");
  SnapshotNetwork n;
  if (net.contains("enabled")) n.enabled = get<bool>(net, "enabled", origin);
  if (net.contains("allow_hosts")) n.allow_hosts = get<std::vector<std::string>>(net, "allow_hosts", origin);
  if (net.contains("allow_all_hosts")) n.allow_all_hosts = get<bool>(net, "allow_all_hosts", origin);
  if (net.contains("deny_hosts")) n.deny_hosts = get<std::vector<std::string>>(net, "deny_hosts", origin);
  if (net.contains("allow_internal_hosts"))
    n.allow_internal_hosts = get<std::vector<std::string>>(net, "allow_internal_hosts", origin);
  if (net.contains("dns")) n.dns = get<std::string>(net, "dns", origin);
  if (n.dns != "synthetic" && n.dns != "trusted" && n.dns != "open") bad(origin, "unknown DNS mode " + n.dns);
  if (net.contains("ssh_allow_hosts"))
    n.ssh_allow_hosts = get<std::vector<std::string>>(net, "ssh_allow_hosts", origin);
  if (net.contains("guest_mac")) {
    net::Mac mac;
    if (!net::parse_mac(get<std::string>(net, "guest_mac", origin), mac) || mac[0] != 0x52 || mac[1] != 0x54 ||
        mac[2] != 0x00)
      bad(origin, "guest_mac must be 52:54:00: and three more lower-case hex pairs");
    n.guest_mac = mac;
  }
  return n;
}

json network_to_json(const SnapshotNetwork& n) {
  json out{{"enabled", n.enabled},
           {"allow_hosts", n.allow_hosts},
           {"allow_all_hosts", n.allow_all_hosts},
           {"deny_hosts", n.deny_hosts},
           {"allow_internal_hosts", n.allow_internal_hosts},
           {"dns", n.dns},
           {"ssh_allow_hosts", n.ssh_allow_hosts}};
  if (n.guest_mac) out["guest_mac"] = net::to_string(*n.guest_mac);
  return out;
}

// The RAM image's digest: exactly one key of kRamDigestAlgorithms.
RamDigest parse_ram_digest(const json& ram, const std::string& origin) {
  RamDigest digest;
  for (const auto& [name, digits] : kRamDigestAlgorithms) {
    const std::string key(name);
    if (!ram.contains(key)) continue;
    if (!digest.empty()) bad(origin, "the RAM image has two digests");
    digest.hex = get<std::string>(ram, key.c_str(), origin);
    if (!is_lower_hex(digest.hex, digits)) bad(origin, "bad RAM image " + key);
    digest.algorithm = key;
  }
  if (digest.empty()) {
    std::string names;
    for (const auto& a : kRamDigestAlgorithms) names += (names.empty() ? "" : " or ") + std::string(a.name);
    bad(origin, "the RAM image has no digest (" + names + ")");
  }
  return digest;
}

// The "vm" object: what restarts QEMU identically.
void parse_vm(const json& vm, SnapshotManifest& m, const std::string& origin) {
  m.memory_mib = get<std::uint32_t>(vm, "memory_mib", origin);
  m.cpus = get<std::uint32_t>(vm, "cpus", origin);
  m.machine = get<std::string>(vm, "machine", origin);
  m.accel = get<std::string>(vm, "accel", origin);
  m.hostname = get<std::string>(vm, "hostname", origin);
  if (m.machine != "microvm" && m.machine != "q35") bad(origin, "unknown machine " + m.machine);
  if (m.accel != "kvm" && m.accel != "tcg") bad(origin, "unknown accelerator " + m.accel);
  if (m.memory_mib < 128 || m.cpus < 1 || m.cpus > 255) bad(origin, "bad VM size");
  if (vm.contains("rootfs")) {
    const json rootfs = get<json>(vm, "rootfs", origin);
    m.rootfs_mode = get<std::string>(rootfs, "mode", origin);
    m.rootfs_size = get<std::uint64_t>(rootfs, "size", origin);
    if (!rootfs_mode_from_string(m.rootfs_mode)) bad(origin, "unknown rootfs mode " + m.rootfs_mode);
    if (m.rootfs_mode == "cow" && m.rootfs_size == 0) bad(origin, "a cow root needs its disk size");
  }
  const json env = get<json>(vm, "env", origin);
  if (!env.is_object()) bad(origin, "env must be an object");
  for (const auto& kv : env.items()) {
    if (!kv.value().is_string()) bad(origin, "env values must be strings");
    m.env.emplace_back(kv.key(), kv.value().get<std::string>());
  }
  if (vm.contains("device_layout")) {
    m.device_layout = get<std::uint32_t>(vm, "device_layout", origin);
    if (m.device_layout < 1) bad(origin, "device layout 0 does not exist");
  }
  if (vm.contains("spare_mount_slots")) {
    const auto names = get<std::vector<std::string>>(vm, "spare_mount_slots", origin);
    if (names.size() > SnapshotManifest::kMaxMountSlots) bad(origin, "too many spare mount slots");
    for (const auto& name : names) {
      std::optional<vfs::FsTransport> t = vfs::transport_from_name(name);
      if (!t) bad(origin, "unknown mount slot transport " + name);
      m.spare_mount_slots.push_back(*t);
    }
  }
}

// The "state" and "ram" objects: QEMU's saved state and the RAM image beside it.
void parse_state(const json& doc, SnapshotManifest& m, const std::string& origin) {
  const json state = get<json>(doc, "state", origin);
  m.state_file = get<std::string>(state, "file", origin);
  if (m.state_file != SnapshotManifest::kStateFile && m.state_file != SnapshotManifest::kRawStateFile)
    bad(origin, "unexpected state file name");
  m.state_size = get<std::uint64_t>(state, "size", origin);
  m.state_sha256 = get<std::string>(state, "sha256", origin);
  if (!is_lower_hex(m.state_sha256, 64)) bad(origin, "bad state hash");
  m.save_seconds = get<double>(state, "save_seconds", origin);
  if (doc.contains("ram")) {  // absent: the RAM is in the state
    const json ram = get<json>(doc, "ram", origin);
    if (get<std::string>(ram, "file", origin) != SnapshotManifest::kRamFile) bad(origin, "unexpected RAM image name");
    if (get<std::uint64_t>(ram, "size", origin) != std::uint64_t{m.memory_mib} << 20)
      bad(origin, "the RAM image's size is not the VM's memory size");
    m.ram_stored_bytes = get<std::uint64_t>(ram, "stored_bytes", origin);
    m.ram_digest = parse_ram_digest(ram, origin);
  }
  if (m.state_file == SnapshotManifest::kRawStateFile && m.ram_digest.empty())
    bad(origin, "an uncompressed state but no RAM image");
}

// Secret names and placeholders (never values), and the revoked ones.
void parse_secrets(const json& doc, SnapshotManifest& m, const std::string& origin) {
  m.secret_names = get<std::vector<std::string>>(doc, "secret_names", origin);
  const json placeholders = get<json>(doc, "secret_placeholders", origin);
  if (!placeholders.is_object()) bad(origin, "secret_placeholders must be an object");
  for (const auto& kv : placeholders.items()) {
    if (!kv.value().is_string()) bad(origin, "secret placeholders must be strings");
    m.secret_placeholders.emplace_back(kv.key(), kv.value().get<std::string>());
  }
  if (doc.contains("revoked_secrets")) {  // absent in older snapshots
    const json revoked = get<json>(doc, "revoked_secrets", origin);
    if (!revoked.is_array() || revoked.size() > 1024) bad(origin, "revoked_secrets must be a list (at most 1024)");
    for (const auto& r : revoked) {
      if (!r.is_object()) bad(origin, "revoked_secrets entries must be {\"name\", \"placeholder\"}");
      m.revoked_placeholders.emplace_back(get<std::string>(r, "name", origin),
                                          get<std::string>(r, "placeholder", origin));
    }
  }
}

}  // namespace

SnapshotManifest SnapshotManifest::parse(const std::string& text, const std::string& origin) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) bad(origin, "manifest.json is not a JSON object (truncated?)");
  if (get<int>(doc, "schema", origin) != kSchemaVersion) bad(origin, "unsupported schema");
  SnapshotManifest m;
  m.id = get<std::string>(doc, "id", origin);
  if (!is_lower_hex(m.id, 16)) bad(origin, "id must be 16 hex digits");
  m.created = get<std::string>(doc, "created", origin);
  const json image = get<json>(doc, "image", origin);
  m.image_id = get<std::string>(image, "id", origin);
  m.image_name = get<std::string>(image, "name", origin);
  m.image_manifest_sha256 = get<std::string>(image, "manifest_sha256", origin);
  if (!is_lower_hex(m.image_id, 16) || !is_lower_hex(m.image_manifest_sha256, 64)) bad(origin, "bad image reference");
  parse_vm(get<json>(doc, "vm", origin), m, origin);
  m.qemu_version = get<std::string>(doc, "qemu_version", origin);
  m.gondolin_version = get<std::string>(doc, "gondolin_version", origin);
  m.agent_protocol = get<std::uint32_t>(doc, "agent_protocol", origin);
  parse_state(doc, m, origin);
  m.network = parse_network(get<json>(doc, "network", origin), origin);
  m.mounts_json = get<json>(doc, "mounts", origin).dump();
  parse_secrets(doc, m, origin);
  return m;
}

std::string SnapshotManifest::to_json() const {
  json env_obj = json::object();
  for (const auto& [k, v] : env) env_obj[k] = v;
  json spare_slots = json::array();
  for (vfs::FsTransport t : spare_mount_slots) spare_slots.push_back(vfs::transport_name(t));
  json placeholders_obj = json::object();
  for (const auto& [k, v] : secret_placeholders) placeholders_obj[k] = v;
  json revoked = json::array();
  for (const auto& [name, placeholder] : revoked_placeholders)
    revoked.push_back({{"name", name}, {"placeholder", placeholder}});
  json doc{
      {"schema", kSchemaVersion},
      {"id", id},
      {"created", created},
      {"image", {{"id", image_id}, {"name", image_name}, {"manifest_sha256", image_manifest_sha256}}},
      {"vm",
       {{"memory_mib", memory_mib},
        {"cpus", cpus},
        {"machine", machine},
        {"accel", accel},
        {"hostname", hostname},
        {"rootfs", {{"mode", rootfs_mode}, {"size", rootfs_size}}},
        {"spare_mount_slots", spare_slots},
        {"device_layout", device_layout},
        {"env", env_obj}}},
      {"qemu_version", qemu_version},
      {"gondolin_version", gondolin_version},
      {"agent_protocol", agent_protocol},
      {"state", {{"file", state_file}, {"size", state_size}, {"sha256", state_sha256}, {"save_seconds", save_seconds}}},
      {"network", network_to_json(network)},
      {"mounts", json::parse(mounts_json, nullptr, false)},
      {"secret_names", secret_names},
      {"secret_placeholders", placeholders_obj},
      {"revoked_secrets", revoked},
  };
  if (!ram_digest.empty())
    doc["ram"] = {{"file", kRamFile},
                  {"size", std::uint64_t{memory_mib} << 20},
                  {"stored_bytes", ram_stored_bytes},
                  {ram_digest.algorithm, ram_digest.hex}};
  return doc.dump(2) + "\n";
}

}  // namespace gondolin::session
