#include "egress/http/http_serialize.h"

#include "util/logging.h"

namespace gondolin::egress {
namespace {

void append_headers(std::string& out, const HttpHeaders& headers) {
  for (const auto& h : headers.list()) {
    if (!is_safe_header(h)) {
      log().warn("egress: dropping malformed header '{}' set by a hook", h.name.substr(0, 64));
      continue;
    }
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
}

void append_framing(std::string& out, OutFraming f) {
  if (f.framing == BodyFraming::ContentLength)
    out += "Content-Length: " + std::to_string(f.content_length) + "\r\n";
  else if (f.framing == BodyFraming::Chunked)
    out += "Transfer-Encoding: chunked\r\n";
}

}  // namespace

bool is_safe_header(const HttpHeader& h) {
  if (h.name.empty()) return false;
  for (char c : h.name)
    if (!is_token_char(c)) return false;
  for (char c : h.value)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 421: return "Misdirected Request";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

std::string serialize_request_head(const HttpRequest& r, OutFraming framing, bool websocket_upgrade,
                                   std::string_view upgrade_value) {
  std::string out;
  out.reserve(256);
  out += r.method;
  out += ' ';
  out += r.target;
  out += " HTTP/1.1\r\nHost: ";
  bool v6 = r.host.find(':') != std::string::npos;
  out += v6 ? "[" + r.host + "]" : r.host;
  const std::uint16_t default_port = r.scheme == "https" ? 443 : 80;
  if (r.port != default_port) out += ":" + std::to_string(r.port);
  out += "\r\n";
  append_headers(out, r.headers);
  if (websocket_upgrade) {
    out += "Connection: Upgrade\r\nUpgrade: ";
    out += upgrade_value;
    out += "\r\n";
  }
  append_framing(out, framing);
  out += "\r\n";
  return out;
}

std::string serialize_response_head(const HttpResponse& response, OutFraming framing, bool close, bool raw_framing,
                                    std::string_view extra_lines) {
  std::string out;
  out.reserve(256);
  int status = response.status >= 100 && response.status <= 999 ? response.status : 500;
  out += "HTTP/1.1 " + std::to_string(status) + " ";
  bool reason_ok = true;
  for (char c : response.reason)
    if (c == '\r' || c == '\n' || c == '\0') reason_ok = false;
  out += reason_ok ? response.reason : std::string(reason_phrase(status));
  out += "\r\n";
  append_headers(out, response.headers);
  if (!raw_framing) append_framing(out, framing);
  out += extra_lines;
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

std::string make_text_response(int status, std::string_view text, bool close) {
  HttpResponse r;
  r.status = status;
  r.reason = reason_phrase(status);
  r.headers.add("Content-Type", "text/plain; charset=utf-8");
  r.headers.add("Cache-Control", "no-store");
  std::string body = std::string(text) + "\n";
  std::string out = serialize_response_head(r, {BodyFraming::ContentLength, body.size()}, close);
  out += body;
  return out;
}

}  // namespace gondolin::egress
