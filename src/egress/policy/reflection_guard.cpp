#include "egress/policy/reflection_guard.h"

#include <algorithm>

namespace gondolin::egress {

ReflectionGuard::ReflectionGuard(std::vector<Reflection> reflections) {
  for (auto& r : reflections) {
    if (r.inserted.empty() || std::find(reflections_.begin(), reflections_.end(), r) != reflections_.end()) continue;
    longest_ = std::max(longest_, r.inserted.size());
    reflections_.push_back(std::move(r));
  }
}

ReflectionGuard::Match ReflectionGuard::leftmost(std::string_view text, std::size_t from) const {
  Match best;
  for (const auto& r : reflections_) {
    std::size_t at = text.find(r.inserted, from);
    if (at == std::string_view::npos) continue;
    if (at < best.pos || (at == best.pos && r.inserted.size() > best.reflection->inserted.size())) best = Match{at, &r};
  }
  return best;
}

std::string ReflectionGuard::scrub(std::string_view text) const {
  std::string out;
  release(text, true, out);
  return out;
}

void ReflectionGuard::feed(std::string_view in, std::string& out) {
  if (reflections_.empty()) {
    out.append(in);
    return;
  }
  carry_.append(in);
  drain(out, false);
}

void ReflectionGuard::flush(std::string& out) {
  drain(out, true);
  carry_.clear();
}

void ReflectionGuard::drain(std::string& out, bool final) { carry_.erase(0, release(carry_, final, out)); }

std::size_t ReflectionGuard::release(std::string_view text, bool final, std::string& out) const {
  // A match at p is certain once p + longest_ <= size: every pattern that
  // could start at or before p lies wholly inside the text.
  const std::size_t horizon = final ? text.size() + 1 : (text.size() >= longest_ ? text.size() - longest_ + 1 : 0);
  std::size_t pos = 0;
  Match m = leftmost(text, 0);
  for (; m.reflection && m.pos < horizon; m = leftmost(text, pos)) {
    out.append(text.substr(pos, m.pos - pos));
    out += m.reflection->original;
    pos = m.pos + m.reflection->inserted.size();
  }
  // Bytes before `safe` cannot be part of a later match.
  std::size_t safe = std::min(m.reflection ? m.pos : text.size(), std::min(horizon, text.size()));
  safe = std::max(safe, pos);
  out.append(text.substr(pos, safe - pos));
  return safe;
}

}  // namespace gondolin::egress
