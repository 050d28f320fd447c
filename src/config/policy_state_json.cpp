#include "config/policy_state_json.h"

#include <nlohmann/json.hpp>

#include "gondolin/error.h"

namespace gondolin::config {
namespace {

using nlohmann::json;

std::vector<std::string> strings_at(const json& j, const char* key) {
  if (!j.contains(key)) return {};
  const json& v = j.at(key);
  if (!v.is_array()) throw Error(ErrorKind::Usage, std::string("policy state: \"") + key + "\" is not a list");
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) throw Error(ErrorKind::Usage, std::string("policy state: \"") + key + "\" holds a non-string");
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::string string_at(const json& j, const char* key) {
  if (!j.contains(key) || !j.at(key).is_string())
    throw Error(ErrorKind::Usage, std::string("policy state: \"") + key + "\" is missing or not a string");
  return j.at(key).get<std::string>();
}

}  // namespace

std::string policy_state_to_json(const PolicyState& st) {
  json j;
  j["allow_hosts"] = st.allow_hosts;
  j["deny_hosts"] = st.deny_hosts;
  j["allow_internal_hosts"] = st.allow_internal_hosts;
  j["allow_all_hosts"] = st.allow_all_hosts;
  j["secrets"] = json::array();
  for (const auto& s : st.secrets)
    j["secrets"].push_back({{"name", s.name},
                            {"hosts", s.hosts},
                            {"methods", s.methods},
                            {"path_prefixes", s.path_prefixes},
                            {"placeholder", s.placeholder}});
  j["revoked_secrets"] = st.revoked_secrets;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

PolicyState policy_state_from_json(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(ErrorKind::Usage, "policy state: not a JSON object");
  PolicyState st;
  st.allow_hosts = strings_at(j, "allow_hosts");
  st.deny_hosts = strings_at(j, "deny_hosts");
  st.allow_internal_hosts = strings_at(j, "allow_internal_hosts");
  if (j.contains("allow_all_hosts")) {
    if (!j.at("allow_all_hosts").is_boolean())
      throw Error(ErrorKind::Usage, "policy state: \"allow_all_hosts\" is not true or false");
    st.allow_all_hosts = j.at("allow_all_hosts").get<bool>();
  }
  if (j.contains("secrets")) {
    if (!j.at("secrets").is_array()) throw Error(ErrorKind::Usage, "policy state: \"secrets\" is not a list");
    for (const auto& s : j.at("secrets")) {
      if (!s.is_object()) throw Error(ErrorKind::Usage, "policy state: a secret is not an object");
      st.secrets.push_back({string_at(s, "name"), strings_at(s, "hosts"), strings_at(s, "methods"),
                            strings_at(s, "path_prefixes"), string_at(s, "placeholder")});
    }
  }
  st.revoked_secrets = strings_at(j, "revoked_secrets");
  return st;
}

}  // namespace gondolin::config
