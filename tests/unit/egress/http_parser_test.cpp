#include <gtest/gtest.h>

#include "egress/http/http_parser.h"

using namespace gondolin::egress;

namespace {

HeadResult<RequestHead> parse_request(std::string_view text) {
  HttpRequestParser p;
  return p.parse(text);
}

// Feeds the message one byte at a time, as a slow guest would.
HeadResult<RequestHead> parse_request_bytewise(std::string_view text) {
  HttpRequestParser p;
  HeadResult<RequestHead> r;
  for (std::size_t i = 1; i <= text.size(); ++i) {
    r = p.parse(text.substr(0, i));
    if (r.state != ParseState::NeedMore) return r;
  }
  return r;
}

void expect_rejected(std::string_view text, int status, std::string_view reason_part) {
  auto r = parse_request(text);
  ASSERT_EQ(r.state, ParseState::Error) << text;
  EXPECT_EQ(r.error.status, status) << text;
  EXPECT_NE(r.error.reason.find(reason_part), std::string::npos) << r.error.reason;
  auto b = parse_request_bytewise(text);
  EXPECT_EQ(b.state, ParseState::Error) << "bytewise: " << text;
}

}  // namespace

TEST(HttpRequestParser, SimpleGet) {
  auto r = parse_request("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\nNEXT");
  ASSERT_EQ(r.state, ParseState::Done);
  EXPECT_EQ(r.head.method, "GET");
  EXPECT_EQ(r.head.target, "/a?b=1");
  EXPECT_EQ(r.head.minor_version, 1);
  EXPECT_EQ(r.head.headers.get("HOST").value(), "example.com");
  EXPECT_EQ(r.head.framing, BodyFraming::None);
  EXPECT_TRUE(r.head.keep_alive);
  EXPECT_EQ(r.head_size, std::string_view("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n").size());
}

TEST(HttpRequestParser, IncrementalMatchesWhole) {
  std::string msg = "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
  auto r = parse_request_bytewise(msg);
  ASSERT_EQ(r.state, ParseState::Done);
  EXPECT_EQ(r.head.framing, BodyFraming::ContentLength);
  EXPECT_EQ(r.head.content_length, 5u);
  EXPECT_FALSE(r.head.keep_alive);
}

TEST(HttpRequestParser, ChunkedAndWebsocket) {
  auto r = parse_request("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n");
  ASSERT_EQ(r.state, ParseState::Done);
  EXPECT_EQ(r.head.framing, BodyFraming::Chunked);
  auto ws =
      parse_request("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
  ASSERT_EQ(ws.state, ParseState::Done);
  EXPECT_TRUE(ws.head.websocket_upgrade);
}

TEST(HttpRequestParser, LeadingEmptyLinesTolerated) {
  auto r = parse_request("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(r.state, ParseState::Done);
  EXPECT_EQ(r.head.method, "GET");
}

TEST(HttpRequestParser, Http10WithoutHost) {
  auto r = parse_request("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.state, ParseState::Done);
  EXPECT_EQ(r.head.minor_version, 0);
  EXPECT_FALSE(r.head.keep_alive);
}

TEST(HttpRequestParser, RejectsAmbiguousFraming) {
  expect_rejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400,
                  "duplicate Content-Length");
  expect_rejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", 400, "invalid Content-Length");
  expect_rejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
                  "both Content-Length and Transfer-Encoding");
  expect_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
                  "more than one Transfer-Encoding");
  expect_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
                  "unsupported Transfer-Encoding");
  expect_rejected("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 501, "unsupported");
  expect_rejected("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "HTTP/1.0");
  expect_rejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, "invalid Content-Length");
  expect_rejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400,
                  "invalid Content-Length");
  expect_rejected("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400, "invalid Content-Length");
}

TEST(HttpRequestParser, RejectsLineFramingTricks) {
  expect_rejected("GET / HTTP/1.1\nHost: h\n\n", 400, "bare LF");
  expect_rejected("GET / HTTP/1.1\r\nHost: h\n\r\n", 400, "bare LF");
  expect_rejected("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400, "bare CR");
  expect_rejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n continued\r\n\r\n", 400, "obsolete line folding");
  expect_rejected("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\tcontinued\r\n\r\n", 400, "obsolete line folding");
  expect_rejected("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "whitespace before a header colon");
  expect_rejected("GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", 400, "invalid header name");
  expect_rejected("GET / HTTP/1.1\r\n: h\r\n\r\n", 400, "header name");
  expect_rejected("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n", 400, "control character");
  expect_rejected(std::string_view("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 35), 400, "control character");
}

TEST(HttpRequestParser, RejectsBadStartLines) {
  expect_rejected("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "malformed request line");
  expect_rejected("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "malformed request line");
  expect_rejected("GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid character");
  expect_rejected("G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid method");
  expect_rejected("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "unsupported HTTP version");
  expect_rejected("GET / HTTX/1.1\r\nHost: h\r\n\r\n", 400, "malformed HTTP version");
  expect_rejected("GET / HTTP/1.1\r\n\r\n", 400, "missing Host");
  expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host");
  expect_rejected("GET / HTTP/1.1\r\nHost: h\r\nConnection: a b\r\n\r\n", 400, "invalid Connection");
}

TEST(HttpRequestParser, EnforcesLimits) {
  HeadLimits limits;
  std::string long_target = "GET /" + std::string(limits.max_line, 'a') + " HTTP/1.1\r\n";
  auto r = parse_request(long_target);
  ASSERT_EQ(r.state, ParseState::Error);
  EXPECT_EQ(r.error.status, 414);

  std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (std::size_t i = 0; i < limits.max_headers + 1; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  r = parse_request(many);
  ASSERT_EQ(r.state, ParseState::Error);
  EXPECT_EQ(r.error.status, 431);

  std::string big = "GET / HTTP/1.1\r\nHost: h\r\n";
  while (big.size() < limits.max_head + 10) big += "X-Pad: " + std::string(4000, 'p') + "\r\n";
  r = parse_request(big);  // no end yet, but already too large
  ASSERT_EQ(r.state, ParseState::Error);
  EXPECT_EQ(r.error.status, 431);

  std::string long_header = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(limits.max_line + 1, 'v');
  r = parse_request(long_header);
  ASSERT_EQ(r.state, ParseState::Error);
  EXPECT_EQ(r.error.status, 431);
}

TEST(HttpResponseParser, StatusLineAndFraming) {
  HttpResponseParser p;
  auto r = p.parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
  ASSERT_EQ(r.state, ParseState::Done);
  EXPECT_EQ(r.head.status, 200);
  EXPECT_EQ(r.head.reason, "OK");
  EXPECT_EQ(r.head.framing, BodyFraming::ContentLength);
  EXPECT_EQ(response_body_framing(r.head, "HEAD"), BodyFraming::None);
  EXPECT_EQ(response_body_framing(r.head, "GET"), BodyFraming::ContentLength);

  HttpResponseParser p2;
  auto c = p2.parse("HTTP/1.1 204\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(c.state, ParseState::Done);
  EXPECT_EQ(c.head.reason, "");
  EXPECT_FALSE(c.head.keep_alive);
  EXPECT_EQ(response_body_framing(c.head, "GET"), BodyFraming::None);

  HttpResponseParser p3;
  auto u = p3.parse("HTTP/1.0 200 OK\r\n\r\n");
  ASSERT_EQ(u.state, ParseState::Done);
  EXPECT_EQ(u.head.framing, BodyFraming::UntilClose);
  EXPECT_FALSE(u.head.keep_alive);

  // Identical repeated lengths are allowed in responses (RFC 9110 8.6), different ones are not.
  HttpResponseParser p4;
  EXPECT_EQ(p4.parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n").state, ParseState::Done);
  HttpResponseParser p5;
  EXPECT_EQ(p5.parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n").state, ParseState::Error);
}

TEST(HttpResponseParser, RejectsSmuggling) {
  for (std::string_view bad :
       {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 3\n\n", "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n", "\r\nHTTP/1.1 200 OK\r\n\r\n"}) {
    HttpResponseParser p;
    auto r = p.parse(bad);
    EXPECT_EQ(r.state, ParseState::Error) << bad;
    EXPECT_EQ(r.error.status, 502) << bad;
  }
}
