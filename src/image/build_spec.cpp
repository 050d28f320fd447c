#include "image/build_spec.h"

#include <nlohmann/json.hpp>

#include <set>

#include "gondolin/error.h"

namespace gondolin {

bool is_safe_spec_name(const std::string& s) {
  if (s.empty() || s.size() > 128 || s[0] == '-') return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.' || c == '_')) return false;
  return true;
}

std::pair<std::string, std::string> parse_name_tag(const std::string& text, const std::string& what) {
  std::size_t colon = text.find(':');
  std::string name = text.substr(0, colon);
  std::string tag = colon == std::string::npos ? "latest" : text.substr(colon + 1);
  if (!is_safe_spec_name(name) || !is_safe_spec_name(tag))
    throw Error(ErrorKind::Usage, "invalid " + what + " '" + text + "': use NAME[:TAG] (letters, digits, - + . _)");
  return {name, tag};
}

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& origin, const std::string& what) {
  throw Error(ErrorKind::Usage, "invalid image spec " + origin + ": " + what);
}

bool safe_name(const std::string& s) { return is_safe_spec_name(s); }

std::string get_string(const json& doc, const char* key, const std::string& origin, const std::string& dflt) {
  auto it = doc.find(key);
  if (it == doc.end()) return dflt;
  if (!it->is_string()) bad(origin, std::string("\"") + key + "\" must be a string");
  return it->get<std::string>();
}

std::vector<std::string> get_strings(const json& doc, const char* key, const std::string& origin) {
  std::vector<std::string> out;
  auto it = doc.find(key);
  if (it == doc.end()) return out;
  if (!it->is_array()) bad(origin, std::string("\"") + key + "\" must be a list of strings");
  for (const auto& v : *it) {
    if (!v.is_string()) bad(origin, std::string("\"") + key + "\" must be a list of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// "env": {"NAME": "value"}; names as a shell would accept them.
std::vector<std::pair<std::string, std::string>> get_env(const json& doc, const std::string& origin) {
  std::vector<std::pair<std::string, std::string>> out;
  auto it = doc.find("env");
  if (it == doc.end()) return out;
  if (!it->is_object()) bad(origin, "\"env\" must be an object of strings");
  for (const auto& [key, value] : it->items()) {
    bool ok = !key.empty() && key.size() <= 128 && !std::isdigit(static_cast<unsigned char>(key[0]));
    for (char c : key) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!ok) bad(origin, "env name \"" + key + "\" must be letters, digits and _");
    if (!value.is_string()) bad(origin, "env \"" + key + "\" must be a string");
    out.emplace_back(key, value.get<std::string>());
  }
  return out;
}

// A guest path a copy may write: absolute, no "..", no NUL.
bool safe_guest_path(const std::string& p) {
  if (p.size() < 2 || p[0] != '/' || p.find('\0') != std::string::npos) return false;
  for (const auto& part : std::filesystem::path(p))
    if (part == "..") return false;
  return true;
}

void get_post_build(const json& doc, const std::string& origin, const std::filesystem::path& base_dir, BuildSpec& s) {
  auto it = doc.find("post_build");
  if (it == doc.end()) return;
  if (!it->is_object()) bad(origin, "\"post_build\" must be an object");
  for (const auto& [key, value] : it->items())
    if (key != "commands" && key != "copy") bad(origin, "unknown key \"post_build." + key + "\"");
  s.commands = get_strings(*it, "commands", origin);
  auto copy = it->find("copy");
  if (copy == it->end()) return;
  if (!copy->is_array()) bad(origin, "\"post_build.copy\" must be a list of {\"src\", \"dest\"}");
  for (const auto& c : *copy) {
    if (!c.is_object() || c.size() != 2 || !c.contains("src") || !c.contains("dest") || !c["src"].is_string() ||
        !c["dest"].is_string())
      bad(origin, "each \"post_build.copy\" entry must be {\"src\": HOST_PATH, \"dest\": GUEST_PATH}");
    BuildSpec::Copy entry{c["src"].get<std::string>(), c["dest"].get<std::string>()};
    if (entry.src.empty()) bad(origin, "a \"post_build.copy\" src is empty");
    if (entry.src.is_relative()) entry.src = base_dir / entry.src;
    if (!safe_guest_path(entry.dest))
      bad(origin, "copy dest \"" + entry.dest + "\" must be an absolute guest path without ..");
    std::error_code ec;
    if (!std::filesystem::exists(entry.src, ec)) bad(origin, "copy src " + entry.src.string() + " does not exist");
    s.copies.push_back(std::move(entry));
  }
}

// "oci": {"layout": DIR, "ref": NAME} or {"archive": FILE[, "ref": NAME]}.
void get_oci(const json& doc, const std::string& origin, const std::filesystem::path& base_dir, BuildSpec& s) {
  auto it = doc.find("oci");
  if (it == doc.end()) return;
  if (!it->is_object()) bad(origin, "\"oci\" must be {\"layout\": DIR, \"ref\": NAME} or {\"archive\": FILE}");
  for (const auto& [key, value] : it->items()) {
    if (key != "layout" && key != "archive" && key != "ref") bad(origin, "unknown key \"oci." + key + "\"");
    if (!value.is_string() || value.get<std::string>().empty())
      bad(origin, "\"oci." + key + "\" must be a non-empty string");
  }
  if (it->contains("layout") == it->contains("archive"))
    bad(origin, "\"oci\" needs exactly one of \"layout\" and \"archive\"");
  BuildSpec::Oci oci;
  oci.ref = get_string(*it, "ref", origin, "");
  if (oci.ref.size() > 512 || oci.ref.find_first_of("\n\r") != std::string::npos)
    bad(origin, "\"oci.ref\" is not a name");
  std::filesystem::path& p = it->contains("layout") ? oci.layout : oci.archive;
  p = (*it)[it->contains("layout") ? "layout" : "archive"].get<std::string>();
  if (p.is_relative()) p = base_dir / p;
  std::error_code ec;
  if (!oci.layout.empty() && !std::filesystem::is_directory(oci.layout, ec))
    bad(origin, "oci layout " + oci.layout.string() + " is not a directory");
  if (!oci.archive.empty() && !std::filesystem::is_regular_file(oci.archive, ec))
    bad(origin, "oci archive " + oci.archive.string() + " does not exist");
  for (const char* key : {"suite", "variant", "packages", "apt_sources", "post_build"})
    if (doc.contains(key))
      bad(origin, std::string("\"") + key +
                      "\" cannot be used with \"oci\" (the root comes from the OCI image; change it there)");
  s.oci = std::move(oci);
}

}  // namespace

BuildSpec BuildSpec::parse(const std::string& text, const std::string& origin, const std::filesystem::path& base_dir) {
  json doc = json::parse(text, nullptr, false, true);
  if (doc.is_discarded()) bad(origin, "not valid JSON");
  if (!doc.is_object()) bad(origin, "top level must be an object");
  static const std::set<std::string> known{"name",        "tag",     "suite",       "variant",    "kernel_package",
                                           "packages",    "modules", "apt_sources", "cmdline",    "rootfs_free_mib",
                                           "description", "env",     "post_build",  "init_extra", "oci"};
  for (const auto& [key, value] : doc.items())
    if (!known.count(key)) bad(origin, "unknown key \"" + key + "\"");

  BuildSpec s;
  s.source_text = text;
  s.name = get_string(doc, "name", origin, s.name);
  s.tag = get_string(doc, "tag", origin, s.tag);
  s.suite = get_string(doc, "suite", origin, s.suite);
  s.variant = get_string(doc, "variant", origin, s.variant);
  s.kernel_package = get_string(doc, "kernel_package", origin, s.kernel_package);
  s.packages = get_strings(doc, "packages", origin);
  if (doc.contains("modules")) s.modules = get_strings(doc, "modules", origin);
  s.apt_sources = get_strings(doc, "apt_sources", origin);
  s.cmdline = get_string(doc, "cmdline", origin, "");
  s.env = get_env(doc, origin);
  s.init_extra = get_string(doc, "init_extra", origin, "");
  if (s.init_extra.size() > 64 * 1024 || s.init_extra.find('\0') != std::string::npos)
    bad(origin, "\"init_extra\" must be a script of at most 64 KiB");
  get_post_build(doc, origin, base_dir, s);
  get_oci(doc, origin, base_dir, s);
  if (auto it = doc.find("rootfs_free_mib"); it != doc.end()) {
    if (!it->is_number_unsigned() || it->get<unsigned>() > 1024 * 1024)
      bad(origin, "\"rootfs_free_mib\" must be 0..1048576");
    s.rootfs_free_mib = it->get<unsigned>();
  }
  for (const std::string* n : {&s.name, &s.tag, &s.suite, &s.variant, &s.kernel_package})
    if (!safe_name(*n)) bad(origin, "\"" + *n + "\" is not a valid name");
  for (const auto& p : s.packages)
    if (!safe_name(p)) bad(origin, "package \"" + p + "\" is not a valid Debian package name");
  for (const auto& m : s.modules)
    if (!safe_name(m)) bad(origin, "module \"" + m + "\" is not a valid module name");
  static const std::set<std::string> variants{"minbase", "buildd", "required", "important", "standard", "essential"};
  if (!variants.count(s.variant)) bad(origin, "variant \"" + s.variant + "\" is not an mmdebstrap variant");
  for (const auto& src : s.apt_sources)
    if (src.empty() || src[0] != '/') bad(origin, "apt source \"" + src + "\" must be an absolute file path");
  if (s.cmdline.find_first_of("\n\r\"") != std::string::npos) bad(origin, "cmdline has quotes or newlines");
  return s;
}

}  // namespace gondolin
