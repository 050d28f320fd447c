// The reflection guard: an upstream that echoes a secret the host put into a
// request (a debugging endpoint, an error page quoting the Authorization
// header) must not hand the value to the guest. For each exchange that had
// secrets substituted, the guard knows every string the host inserted and
// what the guest had sent in its place; it replaces the former with the
// latter in the response head and, streamed, in the response body.
//
// Streaming: a match may straddle two reads. The guard holds back at most
// (longest pattern - 1) bytes between feeds, and a match is replaced only once
// every pattern that could start at or before it has been seen whole, so the
// result does not depend on how the body was split (leftmost match wins; at
// one position the longest). flush() ends the body and releases what is held.
//
// Bounded: the patterns come from the host's own secrets, and the carry never
// exceeds the longest of them.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace gondolin::egress {

// One string the host inserted (`inserted`) and what the guest sent instead
// (`original`, the placeholder or its encoding).
struct Reflection {
  std::string inserted;
  std::string original;
  bool operator==(const Reflection&) const = default;
};

class ReflectionGuard {
 public:
  // Empty `inserted` strings are ignored.
  explicit ReflectionGuard(std::vector<Reflection> reflections);

  // A whole string (a header value).
  std::string scrub(std::string_view text) const;
  // Part of a stream: appends to `out` what can be released now.
  void feed(std::string_view in, std::string& out);
  // The end of the stream: appends the held-back rest.
  void flush(std::string& out);

 private:
  struct Match {
    std::size_t pos = std::string::npos;
    const Reflection* reflection = nullptr;
  };
  Match leftmost(std::string_view text, std::size_t from) const;
  // Replaces matches in carry_ from the start; releases to `out` every byte no
  // later input can change (all of it if `final`).
  void drain(std::string& out, bool final);
  // The same for any text: appends the certain part to `out` and returns
  // how many bytes of `text` it covers (all of them if `final`).
  std::size_t release(std::string_view text, bool final, std::string& out) const;

  std::vector<Reflection> reflections_;
  std::size_t longest_ = 0;
  std::string carry_;
};

}  // namespace gondolin::egress
