// Strict, bounded HTTP/1.x head parsers. Pure: they see bytes, never sockets,
// so they can be unit-tested and fuzzed on their own.
//
// Feed the bytes buffered so far (always from the start of the message); the
// parser remembers how far it has scanned, so repeated calls cost O(new
// bytes). Anything ambiguous is an error rather than a guess: bare LF or CR,
// obs-fold, invalid header names, duplicate Content-Length, Content-Length
// with Transfer-Encoding, codings other than chunked, oversized heads.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "egress/http/http_message.h"

namespace gondolin::egress {

struct HeadLimits {
  std::size_t max_line = 8192;  // request/status line and each header line
  std::size_t max_headers = 100;
  std::size_t max_head = 65536;  // whole head including the blank line
};

struct HeadError {
  int status = 400;    // what to answer: 400, 414, 431, 501 or 505
  std::string reason;  // one line, for the guest and the log
};

enum class ParseState { NeedMore, Done, Error };

template <typename Head>
struct HeadResult {
  ParseState state = ParseState::NeedMore;
  Head head;                  // valid when Done
  std::size_t head_size = 0;  // bytes of `data` the head used, when Done
  HeadError error;            // valid when Error
};

// Finds the end of a head incrementally and rejects bare CR/LF as soon as seen.
class HeadScanner {
 public:
  explicit HeadScanner(const HeadLimits& limits, bool skip_leading_crlf)
      : limits_(limits), skip_leading_(skip_leading_crlf) {}
  // Returns the head's size (end of the blank line) once complete, 0 if more is needed.
  // Sets `error` on framing violations.
  std::size_t scan(std::string_view data, HeadError& error);
  std::size_t head_start() const { return start_; }
  void reset() { *this = HeadScanner(limits_, skip_leading_); }

 private:
  HeadLimits limits_;
  bool skip_leading_;
  std::size_t pos_ = 0;
  std::size_t start_ = 0;  // after skipped leading empty lines
  std::size_t line_start_ = 0;
  bool in_leading_ = true;
};

class HttpRequestParser {
 public:
  explicit HttpRequestParser(HeadLimits limits = {}) : limits_(limits), scanner_(limits, true) {}
  HeadResult<RequestHead> parse(std::string_view data);
  void reset() { scanner_.reset(); }

 private:
  HeadLimits limits_;
  HeadScanner scanner_;
};

class HttpResponseParser {
 public:
  explicit HttpResponseParser(HeadLimits limits = {}) : limits_(limits), scanner_(limits, false) {}
  HeadResult<ResponseHead> parse(std::string_view data);
  void reset() { scanner_.reset(); }

 private:
  HeadResult<ResponseHead> parse_head(std::string_view data);
  HeadLimits limits_;
  HeadScanner scanner_;
};

// Parses a complete header block (lines ending in CRLF, no blank line) into
// `headers`. Shared with chunked trailers. Returns false and sets `error`.
bool parse_header_lines(std::string_view block, const HeadLimits& limits, HttpHeaders& headers, HeadError& error);

}  // namespace gondolin::egress
