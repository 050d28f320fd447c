#include "config/host_secret_rules.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string_view>
#include <vector>

#include "config/setting_error.h"
#include "gondolin/error.h"
#include "util/files.h"
#include "util/logging.h"

namespace gondolin::config {

namespace {

constexpr std::size_t kMaxSecretBytes = 64 * 1024;

// What follows NAME@HOSTS=: "@FILE" (the file's contents), "@-" (one line of
// stdin; the rest stays for -i), or the value itself, which every local user
// can read in `ps` while we run: that one is taken, with a warning.
template <typename Bad>
std::string secret_value_from(const std::string& written, const Bad& bad) {
  auto strip_newline = [](std::string v) {
    if (!v.empty() && v.back() == '\n') v.pop_back();
    if (!v.empty() && v.back() == '\r') v.pop_back();
    return v;
  };
  if (written == "@-") {
    std::string line;
    char c = 0;
    while (line.size() < kMaxSecretBytes && ::read(STDIN_FILENO, &c, 1) == 1 && c != '\n') line.push_back(c);
    return strip_newline(line);
  }
  if (written.rfind('@', 0) == 0) {
    const std::string path = written.substr(1);
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) throw bad("cannot read the value from " + path + ": " + ec.message());
    if (size > kMaxSecretBytes) throw bad(path + " is larger than " + std::to_string(kMaxSecretBytes) + " bytes");
    auto data = read_file_if_exists(path);
    if (!data) throw bad("cannot read the value from " + path);
    return strip_newline(*data);
  }
  log().warn(
      "the value of a --host-secret given on the command line is visible to every local user (ps); "
      "prefer the host's $NAME, =@FILE or =@- (one line of stdin)");
  return written;
}

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t at = text.find(sep, start);
    if (at == std::string_view::npos) at = text.size();
    out.emplace_back(text.substr(start, at - start));
    start = at + 1;
  }
  return out;
}

std::vector<std::string> split_list(const std::string& text) { return split(text, ','); }

bool is_token(const std::string& s) {
  static constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || kSpecials.find(c) != std::string_view::npos;
  });
}

// ":GET,POST/v1/,/v2/" (without the colon): methods up to the first '/',
// then comma-separated path prefixes.
template <typename Bad>
void parse_scope(const std::string& scope, HostSecret& s, const Bad& bad) {
  std::size_t slash = scope.find('/');
  std::string methods = scope.substr(0, slash);
  if (!methods.empty()) s.methods = split_list(methods);
  if (slash != std::string::npos) s.path_prefixes = split_list(scope.substr(slash));
  if (s.methods.empty() && s.path_prefixes.empty()) throw bad("empty scope after ':'");
}

}  // namespace

void check_secret_scope(const HostSecret& s) {
  auto bad = [&](const std::string& why) { return Error(ErrorKind::Usage, "secret " + s.name + ": " + why); };
  for (const auto& m : s.methods)
    if (!is_token(m) || m.size() > 32) throw bad("invalid method '" + m.substr(0, 40) + "'");
  for (const auto& p : s.path_prefixes) {
    bool clean = std::none_of(p.begin(), p.end(), [](char c) {
      return static_cast<unsigned char>(c) <= ' ' || c == 0x7f || c == '?' || c == '#' || c == ',';
    });
    if (p.empty() || p[0] != '/' || !clean || p.size() > 1024)
      throw bad("invalid path prefix '" + p.substr(0, 80) + "' (starts with '/'; no space, '?', '#' or ',')");
  }
}

bool valid_env_name(std::string_view n) {
  if (n.empty() || (n[0] >= '0' && n[0] <= '9')) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

HostSecret::Shape parse_placeholder_shape(std::string_view text, std::string_view flag) {
  static const std::pair<std::string_view, std::string_view> kClasses[] = {
      {"hex", "0123456789abcdef"},
      {"HEX", "0123456789ABCDEF"},
      {"digits", "0123456789"},
      {"lower", "abcdefghijklmnopqrstuvwxyz"},
      {"upper", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
      {"alpha", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"},
      {"alnum", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"},
  };
  const std::vector<std::string> parts = split(text, ':');
  if (parts.size() > 3) throw invalid_setting(flag, text, "expected PREFIX[:LENGTH[:ALPHABET]]");
  HostSecret::Shape shape;
  shape.prefix = std::string(parts[0]);
  shape.alphabet = "0123456789abcdef";
  if (parts.size() == 3) {
    shape.alphabet = std::string(parts[2]);
    for (const auto& [name, chars] : kClasses)
      if (parts[2] == name) shape.alphabet = std::string(chars);
  }
  if (parts.size() >= 2 && !parts[1].empty()) {
    std::size_t n = 0;
    auto [end, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), n);
    if (ec != std::errc() || end != parts[1].data() + parts[1].size() || n == 0)
      throw invalid_setting(flag, text, "LENGTH must be a positive number");
    shape.length = n;
  } else {
    const double bits = std::log2(static_cast<double>(std::max<std::size_t>(shape.alphabet.size(), 2)));
    shape.length = static_cast<std::size_t>(std::ceil(128.0 / bits));
  }
  return shape;
}

std::pair<std::string, HostSecret::Shape> parse_named_placeholder_shape(std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0)
    throw invalid_setting("--secret-placeholder", text, "expected NAME=PREFIX[:LENGTH[:ALPHABET]]");
  return {std::string(text.substr(0, eq)), parse_placeholder_shape(text.substr(eq + 1), "--secret-placeholder")};
}

HostSecret parse_host_secret(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::Usage, "invalid --host-secret '" + text.substr(0, text.find('=')) + "': " + why);
  };
  std::size_t at = text.find('@');
  if (at == std::string::npos || at == 0) throw bad("expected NAME@HOST[,HOST...][:SCOPE][=VALUE]");
  HostSecret s;
  s.name = text.substr(0, at);
  std::size_t eq = text.find('=', at);
  std::string spec = text.substr(at + 1, eq == std::string::npos ? std::string::npos : eq - at - 1);
  std::size_t colon = spec.find(':');
  for (auto& h : split_list(spec.substr(0, colon))) {
    if (h.empty()) throw bad("empty host");
    s.hosts.push_back(std::move(h));
  }
  if (colon != std::string::npos) parse_scope(spec.substr(colon + 1), s, bad);
  check_secret_scope(s);
  if (eq != std::string::npos) {
    s.value = secret_value_from(text.substr(eq + 1), bad);
  } else {
    const char* env = std::getenv(s.name.c_str());
    if (!env || !*env) throw bad("no =VALUE given and $" + s.name + " is not set on the host");
    s.value = env;
  }
  if (s.value.empty()) throw bad("empty value");
  return s;
}

}  // namespace gondolin::config
