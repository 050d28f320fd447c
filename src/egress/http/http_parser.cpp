#include "egress/http/http_parser.h"

#include <charconv>

namespace gondolin::egress {
namespace {

constexpr std::size_t kMaxLeadingEmptyLines = 4;
constexpr std::size_t kMaxMethod = 32;

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool is_field_value_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

HeadError error(int status, std::string reason) { return HeadError{status, std::move(reason)}; }

// "HTTP/1.1" -> 1; other HTTP versions -> -2 (unsupported); garbage -> -1.
int parse_version(std::string_view v) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return -1;
  if (v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9') return -1;
  if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) return -2;
  return v[7] - '0';
}

// Comma-separated tokens, lower-cased; false if any element is not a token.
bool split_tokens(std::string_view value, std::vector<std::string>& out) {
  std::size_t start = 0;
  while (start <= value.size()) {
    std::size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view item = trim_ows(value.substr(start, comma - start));
    if (!item.empty()) {
      for (char c : item)
        if (!is_token_char(c)) return false;
      out.push_back(to_lower(item));
    }
    start = comma + 1;
  }
  return true;
}

bool has_token(const std::vector<std::string>& tokens, std::string_view t) {
  for (const auto& x : tokens)
    if (x == t) return true;
  return false;
}

bool parse_content_length(std::string_view v, std::uint64_t& out) {
  if (v.empty() || v.size() > 18) return false;
  for (char c : v)
    if (c < '0' || c > '9') return false;
  auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  return r.ec == std::errc() && r.ptr == v.data() + v.size();
}

struct Framing {
  BodyFraming framing = BodyFraming::None;
  std::uint64_t length = 0;
  bool chunked = false;
  bool has_length = false;
};

// Shared by requests and responses. Requests must not repeat Content-Length at
// all; responses may repeat an identical value (RFC 9110 8.6).
bool resolve_framing(const HttpHeaders& headers, bool is_request, Framing& f, HeadError& err) {
  std::size_t te_count = headers.count("transfer-encoding");
  std::size_t cl_count = headers.count("content-length");
  if (te_count > 0 && cl_count > 0) {
    err = error(400, "both Content-Length and Transfer-Encoding are present");
    return false;
  }
  if (te_count > 1) {
    err = error(400, "more than one Transfer-Encoding header");
    return false;
  }
  if (te_count == 1) {
    std::string_view te = trim_ows(*headers.get("transfer-encoding"));
    if (!iequals(te, "chunked")) {
      err = error(501, "unsupported Transfer-Encoding \"" + std::string(te.substr(0, 64)) + "\" (only chunked)");
      return false;
    }
    f.chunked = true;
    return true;
  }
  if (cl_count > 1 && is_request) {
    err = error(400, "duplicate Content-Length header");
    return false;
  }
  bool first = true;
  for (const auto& h : headers.list()) {
    if (!iequals(h.name, "content-length")) continue;
    std::uint64_t n = 0;
    if (!parse_content_length(trim_ows(h.value), n)) {
      err = error(400, "invalid Content-Length \"" + h.value.substr(0, 64) + "\"");
      return false;
    }
    if (!first && n != f.length) {
      err = error(400, "conflicting Content-Length headers");
      return false;
    }
    f.length = n;
    f.has_length = true;
    first = false;
  }
  return true;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool is_hop_by_hop_header(std::string_view name) {
  static constexpr std::string_view kNames[] = {"connection",        "keep-alive", "proxy-connection", "te", "trailer",
                                                "transfer-encoding", "upgrade",    "content-length"};
  for (auto n : kNames)
    if (iequals(name, n)) return true;
  return false;
}

BodyFraming response_body_framing(const ResponseHead& response, std::string_view request_method) {
  if (iequals(request_method, "HEAD")) return BodyFraming::None;
  if (response.status < 200 || response.status == 204 || response.status == 304) return BodyFraming::None;
  return response.framing;
}

std::size_t HeadScanner::scan(std::string_view data, HeadError& err) {
  while (pos_ < data.size()) {
    char c = data[pos_];
    if (c == '\r') {
      if (pos_ + 1 >= data.size()) return 0;  // need the next byte to judge
      if (data[pos_ + 1] != '\n') {
        err = error(400, "bare CR in the message head");
        return 0;
      }
      ++pos_;
      continue;
    }
    if (c == '\n') {
      if (pos_ == 0 || data[pos_ - 1] != '\r') {
        err = error(400, "bare LF in the message head");
        return 0;
      }
      bool empty = pos_ - line_start_ == 1;
      ++pos_;
      if (empty) {
        if (!in_leading_) return pos_;
        if (!skip_leading_ || pos_ / 2 > kMaxLeadingEmptyLines) {
          err = error(400, "empty line before the start line");
          return 0;
        }
        start_ = pos_;
      } else {
        in_leading_ = false;
      }
      line_start_ = pos_;
      continue;
    }
    ++pos_;
    if (pos_ - line_start_ > limits_.max_line) {
      err = in_leading_ ? error(414, "start line longer than " + std::to_string(limits_.max_line) + " bytes")
                        : error(431, "header line longer than " + std::to_string(limits_.max_line) + " bytes");
      return 0;
    }
    if (pos_ - start_ > limits_.max_head) {
      err = error(431, "message head larger than " + std::to_string(limits_.max_head) + " bytes");
      return 0;
    }
  }
  return 0;
}

bool parse_header_lines(std::string_view block, const HeadLimits& limits, HttpHeaders& headers, HeadError& err) {
  while (!block.empty()) {
    std::size_t eol = block.find("\r\n");
    if (eol == std::string_view::npos) {
      err = error(400, "header line without CRLF");
      return false;
    }
    std::string_view line = block.substr(0, eol);
    block.remove_prefix(eol + 2);
    if (line.empty()) {
      err = error(400, "empty header line");
      return false;
    }
    if (is_ows(line.front())) {
      err = error(400, "obsolete line folding in headers");
      return false;
    }
    std::size_t colon = 0;
    while (colon < line.size() && is_token_char(line[colon])) ++colon;
    if (colon == line.size() || line[colon] != ':') {
      err = error(
          400, colon < line.size() && is_ows(line[colon]) ? "whitespace before a header colon" : "invalid header name");
      return false;
    }
    if (colon == 0) {
      err = error(400, "empty header name");
      return false;
    }
    std::string_view value = trim_ows(line.substr(colon + 1));
    for (char c : value)
      if (!is_field_value_char(static_cast<unsigned char>(c))) {
        err = error(400, "control character in header " + std::string(line.substr(0, colon)));
        return false;
      }
    if (headers.list().size() >= limits.max_headers) {
      err = error(431, "more than " + std::to_string(limits.max_headers) + " headers");
      return false;
    }
    headers.list().push_back(HttpHeader{std::string(line.substr(0, colon)), std::string(value)});
  }
  return true;
}

// A complete head split at its first line: the start line, and the header
// lines without the blank line that ends them.
struct SplitHead {
  std::string_view start_line;
  std::string_view header_lines;
  std::size_t size = 0;  // bytes of the input the head used, skipped empty lines included
};

// Runs the scanner over `data`: the complete head (without skipped leading
// empty lines) split at its first line; or nothing, with `r` set to NeedMore
// or Error. r.state stays Error until the caller sets it.
template <typename Head>
std::optional<SplitHead> complete_head(HeadScanner& scanner, std::string_view data, HeadResult<Head>& r) {
  r.state = ParseState::Error;
  HeadError err;
  const std::size_t end = scanner.scan(data, err);
  if (!err.reason.empty()) {
    r.error = std::move(err);
    return std::nullopt;
  }
  if (end == 0) {
    r.state = ParseState::NeedMore;
    return std::nullopt;
  }
  const std::string_view head = data.substr(scanner.head_start(), end - scanner.head_start());
  const std::size_t eol = head.find("\r\n");
  return SplitHead{head.substr(0, eol), head.substr(eol + 2, head.size() - eol - 4), end};
}

HeadResult<RequestHead> HttpRequestParser::parse(std::string_view data) {
  HeadResult<RequestHead> r;
  const auto complete = complete_head(scanner_, data, r);
  if (!complete) return r;
  const std::string_view line = complete->start_line;
  RequestHead& h = r.head;

  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    r.error = error(400, "malformed request line");
    return r;
  }
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  if (method.empty() || method.size() > kMaxMethod) {
    r.error = error(400, "invalid method");
    return r;
  }
  for (char c : method)
    if (!is_token_char(c)) {
      r.error = error(400, "invalid method");
      return r;
    }
  if (target.empty()) {
    r.error = error(400, "empty request target");
    return r;
  }
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      r.error = error(400, "invalid character in the request target");
      return r;
    }
  int minor = parse_version(version);
  if (minor == -2) {
    r.error = error(505, "unsupported HTTP version " + std::string(version));
    return r;
  }
  if (minor < 0) {
    r.error = error(400, "malformed HTTP version");
    return r;
  }
  h.method = std::string(method);
  h.target = std::string(target);
  h.minor_version = minor;
  if (!parse_header_lines(complete->header_lines, limits_, h.headers, r.error)) return r;

  Framing f;
  if (!resolve_framing(h.headers, true, f, r.error)) return r;
  if (f.chunked && minor == 0) {
    r.error = error(400, "Transfer-Encoding in an HTTP/1.0 request");
    return r;
  }
  h.framing = f.chunked ? BodyFraming::Chunked
                        : (f.has_length && f.length > 0 ? BodyFraming::ContentLength : BodyFraming::None);
  h.content_length = f.length;

  std::size_t hosts = h.headers.count("host");
  if (hosts > 1) {
    r.error = error(400, "more than one Host header");
    return r;
  }
  if (hosts == 0 && minor == 1) {
    r.error = error(400, "missing Host header");
    return r;
  }
  for (const auto& hdr : h.headers.list())
    if (iequals(hdr.name, "connection") && !split_tokens(hdr.value, h.connection_tokens)) {
      r.error = error(400, "invalid Connection header");
      return r;
    }
  h.keep_alive = minor == 1 ? !has_token(h.connection_tokens, "close") : has_token(h.connection_tokens, "keep-alive");
  if (auto up = h.headers.get("upgrade"); up && has_token(h.connection_tokens, "upgrade")) {
    std::vector<std::string> protos;
    if (split_tokens(*up, protos)) h.websocket_upgrade = has_token(protos, "websocket");
  }
  r.head_size = complete->size;
  r.state = ParseState::Done;
  return r;
}

// Every response error is the upstream's fault: the guest gets a 502.
HeadResult<ResponseHead> HttpResponseParser::parse(std::string_view data) {
  HeadResult<ResponseHead> r = parse_head(data);
  if (r.state == ParseState::Error) r.error.status = 502;
  return r;
}

HeadResult<ResponseHead> HttpResponseParser::parse_head(std::string_view data) {
  HeadResult<ResponseHead> r;
  const auto complete = complete_head(scanner_, data, r);
  if (!complete) return r;
  const std::string_view line = complete->start_line;
  ResponseHead& h = r.head;
  int minor = parse_version(line.substr(0, 8));
  if (minor < 0 || line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' ')) {
    r.error = error(502, "malformed status line");
    return r;
  }
  int status = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      r.error = error(502, "malformed status code");
      return r;
    }
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) {
    r.error = error(502, "invalid status code");
    return r;
  }
  std::string_view reason = line.size() > 13 ? line.substr(13) : std::string_view{};
  for (char c : reason)
    if (!is_field_value_char(static_cast<unsigned char>(c))) {
      r.error = error(502, "control character in the status line");
      return r;
    }
  h.minor_version = minor;
  h.status = status;
  h.reason = std::string(reason);
  if (!parse_header_lines(complete->header_lines, limits_, h.headers, r.error)) {
    r.error.status = 502;
    return r;
  }
  Framing f;
  if (!resolve_framing(h.headers, false, f, r.error)) {
    r.error.status = 502;
    return r;
  }
  h.framing = f.chunked ? BodyFraming::Chunked : (f.has_length ? BodyFraming::ContentLength : BodyFraming::UntilClose);
  h.content_length = f.length;
  for (const auto& hdr : h.headers.list())
    if (iequals(hdr.name, "connection") && !split_tokens(hdr.value, h.connection_tokens)) {
      r.error = error(502, "invalid Connection header");
      return r;
    }
  h.keep_alive = minor == 1 ? !has_token(h.connection_tokens, "close") : has_token(h.connection_tokens, "keep-alive");
  r.head_size = complete->size;
  r.state = ParseState::Done;
  return r;
}

}  // namespace gondolin::egress
