#include "egress/policy/secret_store.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "config/host_secret_rules.h"
#include "egress/http/http_message.h"
#include "egress/policy/base64.h"
#include "gondolin/error.h"
#include "util/append_once.h"

namespace gondolin::egress {
namespace {

// The shape's rules: a prefix that sits in headers and URLs unencoded, an
// alphabet of distinct letters and digits, and at least 128 random bits.
void check_shape(const std::string& name, const HostSecret::Shape& shape) {
  auto bad = [&](const std::string& why) { return Error(ErrorKind::Usage, "secret " + name + ": " + why); };
  auto plain = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (shape.prefix.size() > 64 || !std::all_of(shape.prefix.begin(), shape.prefix.end(),
                                               [&](char c) { return plain(c) || c == '_' || c == '-' || c == '.'; }))
    throw bad("placeholder prefix must be at most 64 letters, digits, '_', '-' or '.'");
  std::string sorted = shape.alphabet;
  std::sort(sorted.begin(), sorted.end());
  if (shape.alphabet.size() < 2 || !std::all_of(sorted.begin(), sorted.end(), plain) ||
      std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
    throw bad("placeholder alphabet must be at least 2 distinct letters or digits");
  if (shape.length > 256 ||
      static_cast<double>(shape.length) * std::log2(static_cast<double>(shape.alphabet.size())) < 128.0)
    throw bad("placeholder length must give at least 128 random bits and be at most 256");
}

// `length` characters drawn uniformly from `alphabet` (rejection sampling).
std::string random_placeholder(const HostSecret::Shape& shape) {
  const std::size_t n = shape.alphabet.size();
  const unsigned limit = 256 - 256 % static_cast<unsigned>(n);
  std::string out = shape.prefix;
  unsigned char raw[64];
  while (out.size() < shape.prefix.size() + shape.length) {
    if (RAND_bytes(raw, sizeof raw) != 1) throw Error(ErrorKind::Internal, "no randomness for secret placeholders");
    for (unsigned char b : raw)
      if (b < limit && out.size() < shape.prefix.size() + shape.length) out += shape.alphabet[b % n];
  }
  return out;
}

bool has_shape(const std::string& placeholder, const HostSecret::Shape& shape) {
  return placeholder.size() == shape.prefix.size() + shape.length && placeholder.starts_with(shape.prefix) &&
         placeholder.find_first_not_of(shape.alphabet, shape.prefix.size()) == std::string::npos;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// A path an upstream could read as another one (dot segments, encoded
// slashes or dots, backslashes) is never inside a prefix scope.
bool ambiguous_path(std::string_view path) {
  for (std::string_view bad : {"%2e", "%2E", "%2f", "%2F", "%5c", "%5C", "\\"})
    if (path.find(bad) != std::string_view::npos) return true;
  std::size_t start = 0;
  while (start < path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(start, end - start);
    if (segment == "." || segment == "..") return true;
    start = end + 1;
  }
  return false;
}

// "/v1/" covers "/v1/x"; "/v1" covers "/v1" and "/v1/x" but not "/v1x".
bool path_in_scope(std::string_view path, const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) return true;
  if (ambiguous_path(path)) return false;
  for (const auto& p : prefixes) {
    if (!path.starts_with(p)) continue;
    if (p.back() == '/' || path.size() == p.size() || path[p.size()] == '/') return true;
  }
  return false;
}

}  // namespace

SecretStore::SecretStore(const std::vector<HostSecret>& secrets, std::vector<RevokedSecret> revoked)
    : revoked_(std::move(revoked)) {
  for (const auto& s : secrets) {
    if (!config::valid_env_name(s.name))
      throw Error(ErrorKind::Usage, "invalid secret name '" + s.name + "': use letters, digits and _");
    for (const auto& other : secrets_)
      if (other.name == s.name) throw Error(ErrorKind::Usage, "secret " + s.name + " is defined twice");
    if (s.hosts.empty()) throw Error(ErrorKind::Usage, "secret " + s.name + " names no hosts");
    if (s.value.empty()) throw Error(ErrorKind::Usage, "secret " + s.name + " has an empty value");
    if (s.value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
      throw Error(ErrorKind::Usage, "secret " + s.name + " contains CR, LF or NUL, which cannot go in a header");
    config::check_secret_scope(s);
    Secret out;
    out.name = s.name;
    out.methods = s.methods;
    out.path_prefixes = s.path_prefixes;
    for (const auto& h : s.hosts) out.hosts.add(h);
    out.value = s.value;
    check_shape(s.name, s.placeholder_shape);
    if (s.placeholder.empty()) {
      out.placeholder = random_placeholder(s.placeholder_shape);
    } else {
      if (!has_shape(s.placeholder, s.placeholder_shape))
        throw Error(ErrorKind::Usage, "secret " + s.name +
                                          ": the placeholder the guest holds does not fit the secret's placeholder "
                                          "shape (a resumed session needs the same placeholder_* settings)");
      out.placeholder = s.placeholder;
    }
    secrets_.push_back(std::move(out));
  }
}

std::vector<std::pair<std::string, std::string>> SecretStore::guest_env() const {
  std::vector<std::pair<std::string, std::string>> env;
  for (const auto& s : secrets_) env.emplace_back(s.name, s.placeholder);
  return env;
}

bool SecretStore::allows(const std::string& name, const std::string& host) const {
  for (const auto& s : secrets_)
    if (s.name == name) return s.hosts.match(host) != nullptr;
  return false;
}

std::string_view SecretStore::refusal(const Secret& s, const HttpRequest& request) {
  if (!s.hosts.match(request.host)) return "secret-host";
  if (!s.methods.empty() && std::find(s.methods.begin(), s.methods.end(), request.method) == s.methods.end())
    return "secret-scope";
  if (!path_in_scope(request.path(), s.path_prefixes)) return "secret-scope";
  return {};
}

SecretStore::Hit SecretStore::next_placeholder(std::string_view text, std::size_t from) const {
  Hit hit;
  auto consider = [&](const std::string& placeholder, const Secret* s, const RevokedSecret* r) {
    std::size_t at = text.find(placeholder, from);
    if (at == std::string_view::npos) return;
    if (at < hit.pos || (at == hit.pos && r)) hit = Hit{at, placeholder.size(), s, r};
  };
  for (const auto& s : secrets_) consider(s.placeholder, &s, nullptr);
  for (const auto& r : revoked_) consider(r.placeholder, nullptr, &r);
  return hit;
}

bool SecretStore::rewrite(std::string& text, const HttpRequest& request, bool url_encode,
                          SubstitutionResult& result) const {
  for (Hit hit = next_placeholder(text, 0); hit.pos != std::string::npos;) {
    if (hit.revoked) {
      result.blocked_rule = "secret-revoked";
      result.blocked_secret = hit.revoked->name;
      return false;
    }
    if (std::string_view why = refusal(*hit.secret, request); !why.empty()) {
      result.blocked_rule = std::string(why);
      result.blocked_secret = hit.secret->name;
      return false;
    }
    std::string value = url_encode ? percent_encode(hit.secret->value) : hit.secret->value;
    text.replace(hit.pos, hit.size, value);
    append_once(result.substituted, hit.secret->name);
    append_once(result.reflections, Reflection{hit.secret->value, hit.secret->placeholder});
    if (url_encode) append_once(result.reflections, Reflection{value, hit.secret->placeholder});
    hit = next_placeholder(text, hit.pos + value.size());
  }
  return true;
}

SubstitutionResult SecretStore::substitute(HttpRequest& request, bool in_query) const {
  SubstitutionResult result;
  if (secrets_.empty() && revoked_.empty()) return result;
  HttpRequest out = request;
  for (auto& h : out.headers.list()) {
    if (iequals(h.name, "authorization") || iequals(h.name, "proxy-authorization")) {
      // "Basic <base64(user:pass)>": the placeholder hides inside the encoding.
      std::size_t sp = h.value.find(' ');
      if (sp != std::string::npos && iequals(std::string_view(h.value).substr(0, sp), "basic")) {
        std::size_t start = h.value.find_first_not_of(' ', sp);
        if (start != std::string::npos) {
          if (auto decoded = base64_decode(std::string_view(h.value).substr(start))) {
            if (next_placeholder(*decoded, 0).pos != std::string::npos) {
              if (!rewrite(*decoded, out, false, result)) return result;
              std::string credential = base64_encode(*decoded);
              append_once(result.reflections, Reflection{credential, h.value.substr(start)});
              h.value = h.value.substr(0, start) + credential;
              continue;
            }
          }
        }
      }
    }
    if (!rewrite(h.value, out, false, result)) return result;
  }
  if (in_query) {
    std::size_t q = out.target.find('?');
    if (q != std::string::npos) {
      std::string query = out.target.substr(q + 1);
      if (!rewrite(query, out, true, result)) return result;
      out.target = out.target.substr(0, q + 1) + query;
    }
  }
  request = std::move(out);
  return result;
}

}  // namespace gondolin::egress
