// What a guest sends to (and an upstream answers through) the HTTP proxy:
// request heads, response heads, chunked bodies, TLS ClientHellos, Basic
// credentials. All pure parsers; none may crash, loop or over-read.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "egress/http/chunked_decoder.h"
#include "egress/http/http_parser.h"
#include "egress/policy/base64.h"
#include "egress/tls/tls_client_hello.h"

using namespace gondolin::egress;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 5) {
    case 0: {
      // Fed in two pieces, as it arrives from a socket.
      HttpRequestParser p;
      auto first = p.parse(in.substr(0, in.size() / 2));
      if (first.state == ParseState::NeedMore) (void)p.parse(in);
      break;
    }
    case 1: {
      HttpResponseParser p;
      (void)p.parse(in);
      break;
    }
    case 2: {
      ChunkedDecoder d;
      std::string_view rest = in;
      for (int guard = 0; guard < 100000 && !rest.empty(); ++guard) {
        ChunkStep s = d.step(rest);
        if (s.kind == ChunkStep::Error || s.kind == ChunkStep::Done) break;
        if (s.consumed == 0 && s.kind == ChunkStep::NeedMore) break;
        if (s.consumed > rest.size()) __builtin_trap();  // a step may never claim bytes it was not given
        rest.remove_prefix(s.consumed);
      }
      break;
    }
    case 3: (void)scan_client_hello(in); break;
    case 4: {
      auto decoded = base64_decode(in);
      if (decoded && base64_decode(base64_encode(*decoded)) != decoded) __builtin_trap();
      break;
    }
  }
  return 0;
}
