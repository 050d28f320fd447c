// load_network_policy_file (include/gondolin/net_policy.h): the JSON form of
// the CLI's network flags, parsed strictly.
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "egress/tcp/tcp_rules.h"
#include "gondolin/error.h"
#include "gondolin/net_policy.h"

namespace gondolin {
namespace {

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw Error(ErrorKind::Policy, "policy file " + path + ": " + what);
}

void only_keys(const std::string& path, const nlohmann::json& obj, const std::string& where,
               const std::set<std::string>& allowed) {
  for (const auto& [key, _] : obj.items())
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      bad(path, "unknown key \"" + where + key + "\" (known: " + list + ")");
    }
}

bool get_bool(const std::string& path, const nlohmann::json& j, const std::string& key) {
  if (!j.is_boolean()) bad(path, "\"" + key + "\" must be true or false");
  return j.get<bool>();
}

std::string get_string(const std::string& path, const nlohmann::json& j, const std::string& key) {
  if (!j.is_string()) bad(path, "\"" + key + "\" must be a string");
  return j.get<std::string>();
}

std::vector<std::string> get_strings(const std::string& path, const nlohmann::json& j, const std::string& key) {
  if (!j.is_array()) bad(path, "\"" + key + "\" must be an array of strings");
  std::vector<std::string> out;
  for (const auto& e : j) {
    if (!e.is_string()) bad(path, "\"" + key + "\" must be an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

// Each entry of a list key goes through the parser of the matching CLI flag,
// so the rules and errors are the same, as a Policy error naming the file.
template <class Parse, class Out>
void parse_each(const std::string& path, const nlohmann::json& v, const std::string& key, Parse parse,
                std::vector<Out>& out) {
  for (auto& spec : get_strings(path, v, key)) {
    try {
      out.push_back(parse("\"" + key + "\" entry", spec));
    } catch (const Error& e) {
      bad(path, e.what());
    }
  }
}

}  // namespace

void load_network_policy_file(const std::string& path, NetworkOptions& into) {
  std::ifstream in(path);
  if (!in) bad(path, "cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for numbers like 1E999
    bad(path, std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) bad(path, "must be a JSON object");
  only_keys(path, j, "",
            {"allow_hosts", "allow_all_hosts", "secrets", "secrets_in_query", "websockets", "egress_log",
             "test_loopback_hosts", "upstream_ca", "tcp_map", "listen", "tcp_idle_timeout"});
  NetworkOptions o = into;
  for (const auto& [key, v] : j.items()) {
    if (key == "allow_hosts") {
      for (auto& h : get_strings(path, v, key)) o.allow_hosts.push_back(h);
    } else if (key == "allow_all_hosts") {
      o.allow_all_hosts = o.allow_all_hosts || get_bool(path, v, key);
    } else if (key == "secrets_in_query") {
      o.secrets_in_query = o.secrets_in_query || get_bool(path, v, key);
    } else if (key == "websockets") {
      o.websockets = o.websockets && get_bool(path, v, key);
    } else if (key == "egress_log") {
      o.egress_log_path = get_string(path, v, key);
    } else if (key == "upstream_ca") {
      o.extra_upstream_ca_file = get_string(path, v, key);
    } else if (key == "tcp_map") {
      parse_each(path, v, key, egress::parse_tcp_map, o.tcp_maps);
    } else if (key == "listen") {
      // Duplicates with the --listen flags are found when the whole list is validated.
      parse_each(path, v, key, egress::parse_ingress, o.ingress);
    } else if (key == "tcp_idle_timeout") {
      if (!v.is_number()) bad(path, "\"tcp_idle_timeout\" must be a number of seconds (0: never)");
      try {
        o.tcp_idle_timeout = egress::tcp_idle_timeout_from_seconds("\"tcp_idle_timeout\"", v.dump(), v.get<double>());
      } catch (const Error& e) {
        bad(path, e.what());
      }
    } else if (key == "test_loopback_hosts") {
      for (auto& h : get_strings(path, v, key)) o.test_loopback_hosts.push_back(h);
    } else if (key == "secrets") {
      if (!v.is_object()) bad(path, "\"secrets\" must be an object of NAME: {\"hosts\": [...], \"value\": ...}");
      for (const auto& [name, spec] : v.items()) {
        const std::string where = "secrets." + name;
        if (!spec.is_object()) bad(path, "\"" + where + "\" must be an object");
        only_keys(path, spec, where + ".", {"hosts", "value", "env"});
        HostSecret s;
        s.name = name;
        if (!spec.contains("hosts")) bad(path, "\"" + where + ".hosts\" is missing");
        s.hosts = get_strings(path, spec["hosts"], where + ".hosts");
        if (spec.contains("value") && spec.contains("env"))
          bad(path, "\"" + where + "\" has both \"value\" and \"env\"");
        if (spec.contains("value")) {
          s.value = get_string(path, spec["value"], where + ".value");
        } else {
          std::string var = spec.contains("env") ? get_string(path, spec["env"], where + ".env") : name;
          const char* env = std::getenv(var.c_str());
          if (!env || !*env) bad(path, "secret " + name + " takes its value from $" + var + ", which is not set");
          s.value = env;
        }
        o.secrets.push_back(std::move(s));
      }
    }
  }
  into = std::move(o);
}

}  // namespace gondolin
