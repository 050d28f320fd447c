// Until real fuzzing exists: every parser fed many mutations of valid inputs
// must answer (Done, NeedMore or Error) without crashing, reading out of
// bounds (run under -DGONDOLIN_SANITIZE=ON) or claiming more bytes than given.
#include <gtest/gtest.h>

#include <random>

#include "egress/http/chunked_decoder.h"
#include "egress/http/http_parser.h"
#include "egress/tls/tls_client_hello.h"

using namespace gondolin::egress;

namespace {

std::string mutate(std::string s, std::mt19937& rng) {
  std::uniform_int_distribution<int> op(0, 3), byte(0, 255);
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    std::size_t at = rng() % s.size();
    switch (op(rng)) {
      case 0: s[at] = static_cast<char>(byte(rng)); break;
      case 1: s.erase(at, 1 + rng() % 8); break;
      case 2: s.insert(at, 1, "\r\n:; \t0f"[rng() % 8]); break;
      case 3: s.insert(at, s.substr(rng() % s.size(), rng() % 16)); break;
    }
  }
  return s;
}

}  // namespace

TEST(ParserRobustness, MutatedInputsNeverBreakTheParsers) {
  const std::string requests[] = {
      "POST /a?b HTTP/1.1\r\nHost: h:8080\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, Upgrade\r\n"
      "Upgrade: websocket\r\n\r\n",
      "GET http://h/x HTTP/1.0\r\nContent-Length: 12\r\nX: y\r\n\r\n"};
  const std::string responses[] = {"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
                                   "HTTP/1.0 101 Switching\r\nTransfer-Encoding: chunked\r\n\r\n"};
  const std::string chunked = "5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";
  std::string hello = std::string("\x16\x03\x01\x00\x2f\x01\x00\x00\x2b\x03\x03", 11) + std::string(32, 'r') +
                      std::string("\x00\x00\x02\x13\x01\x01\x00\x00\x00", 9);
  std::mt19937 rng(12345);
  for (int i = 0; i < 20000; ++i) {
    std::string rq = mutate(requests[i % 2], rng);
    HttpRequestParser p;
    for (std::size_t cut : {rq.size() / 2, rq.size()}) {
      auto r = p.parse(std::string_view(rq).substr(0, cut));
      if (r.state == ParseState::Done) {
        ASSERT_LE(r.head_size, cut);
      }
      if (r.state != ParseState::NeedMore) break;
    }
    HttpResponseParser rp;
    std::string rs = mutate(responses[i % 2], rng);
    auto r = rp.parse(rs);
    if (r.state == ParseState::Done) {
      ASSERT_LE(r.head_size, rs.size());
    }
    if (r.state == ParseState::Error) {
      ASSERT_EQ(r.error.status, 502);
    }

    std::string c = mutate(chunked, rng);
    ChunkedDecoder d;
    std::string_view rest = c;
    for (int guard = 0; guard < 1000 && !rest.empty(); ++guard) {
      ChunkStep s = d.step(rest);
      ASSERT_LE(s.consumed, rest.size());
      rest.remove_prefix(s.consumed);
      if (s.kind == ChunkStep::Error || s.kind == ChunkStep::Done || s.kind == ChunkStep::NeedMore) break;
    }
    scan_client_hello(mutate(hello, rng));
  }
}
