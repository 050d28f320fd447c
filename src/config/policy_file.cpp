// load_network_policy_file (include/gondolin/net_policy.h): the JSON form of
// the CLI's network flags, parsed strictly. Each top-level key has one entry
// in kKeys; list entries go through the same grammar as the matching flag
// (config/*_rules.h), so the rules and messages are the same, reported as a
// Policy error naming the file.
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string_view>

#include "config/host_secret_rules.h"
#include "config/ssh_rules.h"
#include "config/tcp_rules.h"
#include "config/test_knobs.h"
#include "gondolin/error.h"
#include "gondolin/net_policy.h"

namespace gondolin {
namespace {

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw Error(ErrorKind::Policy, "policy file " + path + ": " + what);
}

// One key's value, with the file's path for messages.
struct Value {
  const std::string& path;
  const std::string& key;
  const nlohmann::json& json;

  bool boolean() const {
    if (!json.is_boolean()) bad(path, "\"" + key + "\" must be true or false");
    return json.get<bool>();
  }
  std::string string() const {
    if (!json.is_string()) bad(path, "\"" + key + "\" must be a string");
    return json.get<std::string>();
  }
  std::vector<std::string> strings() const {
    if (!json.is_array()) bad(path, "\"" + key + "\" must be an array of strings");
    std::vector<std::string> out;
    for (const auto& e : json) {
      if (!e.is_string()) bad(path, "\"" + key + "\" must be an array of strings");
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  Value at(const std::string& sub_key, const nlohmann::json& sub) const { return Value{path, sub_key, sub}; }
  // Runs a flag grammar, turning its Usage error into this file's Policy error.
  template <class Parse>
  auto parsed(Parse parse) const -> decltype(parse()) {
    try {
      return parse();
    } catch (const Error& e) {
      bad(path, e.what());
    }
  }
  template <class Parse, class Out>
  void each(Parse parse, std::vector<Out>& out) const {
    for (auto& spec : strings()) out.push_back(parsed([&] { return parse("\"" + key + "\" entry", spec); }));
  }
};

void only_keys(const std::string& path, const nlohmann::json& obj, const std::string& where,
               const std::set<std::string>& allowed) {
  for (const auto& [key, _] : obj.items())
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      bad(path, "unknown key \"" + where + key + "\" (known: " + list + ")");
    }
}

// "placeholder_prefix", "placeholder_length", "placeholder_alphabet" (the
// secret store checks that they make a sound placeholder).
void read_placeholder_shape(const Value& v, const std::string& where, const nlohmann::json& spec,
                            HostSecret::Shape& shape) {
  if (spec.contains("placeholder_prefix"))
    shape.prefix = v.at(where + ".placeholder_prefix", spec["placeholder_prefix"]).string();
  if (spec.contains("placeholder_alphabet"))
    shape.alphabet = v.at(where + ".placeholder_alphabet", spec["placeholder_alphabet"]).string();
  if (spec.contains("placeholder_length")) {
    const nlohmann::json& n = spec["placeholder_length"];
    if (!n.is_number_unsigned() || n.get<std::uint64_t>() > 256)
      bad(v.path, "\"" + where + ".placeholder_length\" must be a whole number up to 256");
    shape.length = n.get<std::size_t>();
  }
}

HostSecret secret_from(const Value& v, const std::string& name, const nlohmann::json& spec) {
  const std::string where = "secrets." + name;
  if (!spec.is_object()) bad(v.path, "\"" + where + "\" must be an object");
  only_keys(v.path, spec, where + ".",
            {"hosts", "value", "env", "methods", "path_prefixes", "placeholder_prefix", "placeholder_length",
             "placeholder_alphabet"});
  HostSecret s;
  s.name = name;
  if (!spec.contains("hosts")) bad(v.path, "\"" + where + ".hosts\" is missing");
  s.hosts = v.at(where + ".hosts", spec["hosts"]).strings();
  if (spec.contains("methods")) s.methods = v.at(where + ".methods", spec["methods"]).strings();
  if (spec.contains("path_prefixes")) s.path_prefixes = v.at(where + ".path_prefixes", spec["path_prefixes"]).strings();
  v.parsed([&] { config::check_secret_scope(s); });
  read_placeholder_shape(v, where, spec, s.placeholder_shape);
  if (spec.contains("value") && spec.contains("env")) bad(v.path, "\"" + where + "\" has both \"value\" and \"env\"");
  if (spec.contains("value")) {
    s.value = v.at(where + ".value", spec["value"]).string();
    return s;
  }
  const std::string var = spec.contains("env") ? v.at(where + ".env", spec["env"]).string() : name;
  const char* env = std::getenv(var.c_str());
  if (!env || !*env) bad(v.path, "secret " + name + " takes its value from $" + var + ", which is not set");
  s.value = env;
  return s;
}

void read_secrets(const Value& v, NetworkOptions& o) {
  if (!v.json.is_object()) bad(v.path, "\"secrets\" must be an object of NAME: {\"hosts\": [...], \"value\": ...}");
  for (const auto& [name, spec] : v.json.items()) o.secrets.push_back(secret_from(v, name, spec));
}

void read_tcp_idle_timeout(const Value& v, NetworkOptions& o) {
  if (!v.json.is_number()) bad(v.path, "\"tcp_idle_timeout\" must be a number of seconds (0: never)");
  o.tcp_idle_timeout = v.parsed([&] {
    return config::tcp_idle_timeout_from_seconds("\"tcp_idle_timeout\"", v.json.dump(), v.json.get<double>());
  });
}

// "ssh": {"allow_hosts": [...], "agent": true | "SOCK", "keys": {"HOST": "PATH" |
// {"path": "PATH", "passphrase_env": "VAR"}}, "users": {"HOST": "USER"},
// "known_hosts": [...]}; entries in the flags' grammar.
void read_ssh(const Value& v, NetworkOptions& o) {
  if (!v.json.is_object()) bad(v.path, "\"ssh\" must be an object");
  only_keys(v.path, v.json, "ssh.", {"allow_hosts", "agent", "keys", "users", "known_hosts"});
  SshOptions& ssh = o.ssh;
  const nlohmann::json& j = v.json;
  if (j.contains("allow_hosts")) {
    Value hosts = v.at("ssh.allow_hosts", j["allow_hosts"]);
    for (auto& h : hosts.strings())
      ssh.allowed_hosts.push_back(
          hosts.parsed([&] { return config::parse_ssh_allowed_host(h, "\"ssh.allow_hosts\" entry"); }));
  }
  if (j.contains("agent")) {
    const nlohmann::json& a = j["agent"];
    if (a.is_string())
      ssh.agent_socket = a.get<std::string>();
    else if (!a.is_boolean())
      bad(v.path, "\"ssh.agent\" must be true, false or a socket path");
    ssh.use_agent = a.is_string() || a.get<bool>();
  }
  auto each_host = [&](const char* key, auto on) {
    if (!j.contains(key)) return;
    const std::string where = std::string("ssh.") + key;
    if (!j[key].is_object()) bad(v.path, "\"" + where + "\" must be an object of HOST: ...");
    for (const auto& [host, spec] : j[key].items()) on(where + "." + host, host, spec);
  };
  each_host("keys", [&](const std::string& where, const std::string& host, const nlohmann::json& spec) {
    std::string text = host + "=";
    if (spec.is_object()) {
      only_keys(v.path, spec, where + ".", {"path", "passphrase_env"});
      if (!spec.contains("path")) bad(v.path, "\"" + where + ".path\" is missing");
      text += v.at(where + ".path", spec["path"]).string();
      if (spec.contains("passphrase_env"))
        text += ",passphrase-env=" + v.at(where + ".passphrase_env", spec["passphrase_env"]).string();
    } else {
      text += v.at(where, spec).string();
    }
    auto key = v.parsed([&] { return config::parse_ssh_key(text, "\"" + where + "\""); });
    ssh.key_files[key.host] = key.path;
    if (key.passphrase) ssh.key_passphrases[key.host] = *key.passphrase;
  });
  each_host("users", [&](const std::string& where, const std::string& host, const nlohmann::json& spec) {
    auto [h, user] = v.parsed([&] {
      return config::parse_ssh_host_assignment("\"" + where + "\"", host + "=" + v.at(where, spec).string());
    });
    ssh.users[h] = user;
  });
  if (j.contains("known_hosts"))
    for (auto& f : v.at("ssh.known_hosts", j["known_hosts"]).strings()) ssh.known_hosts_files.push_back(f);
}

// "ssh_git": {"repos": ["[HOST:]PATH", ...], "push": false}.
void read_ssh_git(const Value& v, NetworkOptions& o) {
  if (!v.json.is_object()) bad(v.path, "\"ssh_git\" must be an object");
  only_keys(v.path, v.json, "ssh_git.", {"repos", "push"});
  if (v.json.contains("repos")) {
    Value repos = v.at("ssh_git.repos", v.json["repos"]);
    for (auto& r : repos.strings())
      o.ssh.git.repos.push_back(repos.parsed([&] { return config::parse_ssh_git_repo(r, "\"ssh_git.repos\" entry"); }));
  }
  if (v.json.contains("push")) o.ssh.git.push = o.ssh.git.push && v.at("ssh_git.push", v.json["push"]).boolean();
}

using KeyReader = void (*)(const Value&, NetworkOptions&);

// Booleans combine with the flags toward the stricter or the explicitly
// asked-for setting; lists add to the flags' lists (duplicates are found when
// the whole list is validated); strings replace.
const std::pair<std::string_view, KeyReader> kKeys[] = {
    {"allow_hosts",
     [](const Value& v, NetworkOptions& o) {
       for (auto& h : v.strings()) o.allow_hosts.push_back(h);
     }},
    {"deny_hosts",
     [](const Value& v, NetworkOptions& o) {
       for (auto& h : v.strings()) o.deny_hosts.push_back(h);
     }},
    {"allow_internal_hosts",
     [](const Value& v, NetworkOptions& o) {
       for (auto& h : v.strings()) o.allow_internal_hosts.push_back(h);
     }},
    {"allow_all_hosts",
     [](const Value& v, NetworkOptions& o) { o.allow_all_hosts = o.allow_all_hosts || v.boolean(); }},
    {"secrets", read_secrets},
    {"secrets_in_query",
     [](const Value& v, NetworkOptions& o) { o.secrets_in_query = o.secrets_in_query || v.boolean(); }},
    {"websockets", [](const Value& v, NetworkOptions& o) { o.websockets = o.websockets && v.boolean(); }},
    {"egress_log", [](const Value& v, NetworkOptions& o) { o.egress_log_path = v.string(); }},
    {"tcp_map", [](const Value& v, NetworkOptions& o) { v.each(config::parse_tcp_map, o.tcp_maps); }},
    {"listen", [](const Value& v, NetworkOptions& o) { v.each(config::parse_ingress, o.ingress); }},
    {"tcp_idle_timeout", read_tcp_idle_timeout},
    {"ssh", read_ssh},
    {"ssh_git", read_ssh_git},
    {"test_loopback_hosts",
     [](const Value& v, NetworkOptions& o) {
       auto hosts = v.strings();
       auto& knobs = config::test_knobs(o);
       knobs.loopback_hosts.insert(knobs.loopback_hosts.end(), hosts.begin(), hosts.end());
     }},
    {"upstream_ca",
     [](const Value& v, NetworkOptions& o) { config::test_knobs(o).extra_upstream_ca_file = v.string(); }},
};

nlohmann::json read_json_object(const std::string& path) {
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
  return j;
}

}  // namespace

void load_network_policy_file(const std::string& path, NetworkOptions& into) {
  const nlohmann::json j = read_json_object(path);
  std::set<std::string> known;
  for (const auto& [key, _] : kKeys) known.emplace(key);
  only_keys(path, j, "", known);
  NetworkOptions o = into;
  for (const auto& [key, value] : j.items())
    for (const auto& [name, read] : kKeys)
      if (name == key) read(Value{path, key, value}, o);
  into = std::move(o);
}

}  // namespace gondolin
