// Host-side interception of the guest's HTTP and HTTPS requests.
//
// Every request the guest sends over HTTP (and HTTPS, decrypted by the MITM)
// is parsed on the host. `on_request` sees it first and may inspect it,
// rewrite it, deny it or answer it on the host; the built-in policy (host
// allowlist, secret placeholders, internal-address checks) then applies to
// what the hook let through. `on_response` sees each upstream response head
// before the guest does and may rewrite its status and headers (bodies
// stream and are not buffered).
//
// Hooks run on the VM's io thread: they must not block.
//
//   auto hooks = std::make_shared<gondolin::HttpHooks>();
//   hooks->on_request = [](gondolin::HttpRequest& r) {
//     if (r.host == "mock.test") return gondolin::RequestVerdict::respond({200, "OK", {}, "hi\n"});
//     r.set_header("X-Sandbox", "1");
//     return gondolin::RequestVerdict::forward();
//   };
//   options.network.http_hooks = hooks;
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gondolin {

struct HttpHeader {
  std::string name;
  std::string value;
};

// Header lists keep their order; names compare case-insensitively.
class HttpHeaders {
 public:
  HttpHeaders() = default;
  HttpHeaders(std::initializer_list<HttpHeader> list) : list_(list) {}

  // The first header with this name, if any.
  std::optional<std::string_view> get(std::string_view name) const;
  // Replaces every header of this name by one with `value` (appends if absent).
  void set(std::string_view name, std::string_view value);
  void add(std::string_view name, std::string_view value);
  void remove(std::string_view name);
  std::size_t count(std::string_view name) const;

  const std::vector<HttpHeader>& list() const { return list_; }
  std::vector<HttpHeader>& list() { return list_; }

 private:
  std::vector<HttpHeader> list_;
};

// A request as the guest sent it, after strict parsing. Framing and
// hop-by-hop headers (Content-Length, Transfer-Encoding, Connection, ...) are
// not in `headers`: the host sets them itself when it re-sends the request.
struct HttpRequest {
  std::uint64_t flow_id = 0;
  std::string scheme;  // "http" or "https"
  std::string method;
  std::string host;  // lower case, no port, no trailing dot
  std::uint16_t port = 0;
  std::string target;  // origin form: /path?query
  HttpHeaders headers;
  bool has_body = false;  // the request carries a body (streams; not visible here)

  std::string path() const { return target.substr(0, target.find('?')); }
};

// A response head (from upstream, or a whole response made by a hook).
struct HttpResponse {
  int status = 200;
  std::string reason = "OK";
  HttpHeaders headers;
  std::string body;  // only for responses made by on_request; upstream bodies stream
};

class RequestVerdict {
 public:
  enum class Kind { Forward, Deny, Respond };

  // Send the (possibly rewritten) request on, subject to the built-in policy.
  static RequestVerdict forward() { return RequestVerdict(Kind::Forward); }
  // Refuse it: the guest gets a 403 whose body is "gondolin: <reason>".
  static RequestVerdict deny(std::string reason) {
    RequestVerdict v(Kind::Deny);
    v.reason_ = std::move(reason);
    return v;
  }
  // Answer it on the host; nothing is sent upstream.
  static RequestVerdict respond(HttpResponse response) {
    RequestVerdict v(Kind::Respond);
    v.response_ = std::move(response);
    return v;
  }

  Kind kind() const { return kind_; }
  const std::string& reason() const { return reason_; }
  const HttpResponse& response() const { return response_; }

 private:
  explicit RequestVerdict(Kind k) : kind_(k) {}
  Kind kind_;
  std::string reason_;
  HttpResponse response_;
};

class HttpHooks {
 public:
  // Called for every complete request head. Absent: forward.
  std::function<RequestVerdict(HttpRequest&)> on_request;
  // Called for every final upstream response head (not 1xx). Absent: unchanged.
  std::function<void(const HttpRequest&, HttpResponse&)> on_response;
};

}  // namespace gondolin
