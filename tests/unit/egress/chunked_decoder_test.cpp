#include <gtest/gtest.h>

#include "egress/http/chunked_decoder.h"

using namespace gondolin::egress;

namespace {

struct Decoded {
  bool done = false;
  bool error = false;
  std::string body;
  std::size_t consumed = 0;
  std::string why;
};

// Runs the decoder over `input` fed in pieces of `piece` bytes.
Decoded decode(std::string_view input, std::size_t piece = 1 << 20) {
  ChunkedDecoder d;
  Decoded out;
  std::string pending;
  std::size_t fed = 0;
  while (true) {
    if (pending.empty() || fed < input.size()) {
      std::size_t n = std::min(piece, input.size() - fed);
      pending.append(input.substr(fed, n));
      fed += n;
    }
    ChunkStep s = d.step(pending);
    out.consumed += s.consumed;
    if (s.kind == ChunkStep::Data) out.body.append(s.data);
    pending.erase(0, s.consumed);
    if (s.kind == ChunkStep::Done) {
      out.done = true;
      return out;
    }
    if (s.kind == ChunkStep::Error) {
      out.error = true;
      out.why = d.error();
      return out;
    }
    if (s.kind == ChunkStep::NeedMore && fed == input.size()) return out;
  }
}

}  // namespace

TEST(ChunkedDecoder, DecodesWholeAndPiecewise) {
  std::string msg = "5\r\nhello\r\n1A;name=\"v\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
  for (std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{1000}}) {
    auto d = decode(msg, piece);
    EXPECT_TRUE(d.done) << piece;
    EXPECT_EQ(d.body, "helloabcdefghijklmnopqrstuvwxyz") << piece;
    EXPECT_EQ(d.consumed, msg.size() - 4) << "stops right before the next message";
  }
}

TEST(ChunkedDecoder, LeadingZerosAndBwsBeforeExtension) {
  auto d = decode("0005 ;x\r\nhello\r\n000\r\n\r\n");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.body, "hello");
}

TEST(ChunkedDecoder, RejectsInvalidFraming) {
  const std::string_view bad[] = {
      "g\r\n",                          // not hex
      "-5\r\nhello\r\n0\r\n\r\n",       // sign
      "0x5\r\nhello\r\n0\r\n\r\n",      // prefix
      " 5\r\nhello\r\n0\r\n\r\n",       // leading space
      "5 \r\nhello\r\n0\r\n\r\n",       // trailing space without extension
      "5\nhello\r\n0\r\n\r\n",          // bare LF
      "5\r\nhelloXY0\r\n\r\n",          // data not followed by CRLF
      "5\r\nhello\n0\r\n\r\n",          // bare LF after data
      "fffffffffffffffff\r\n",          // 17 digits: overflow
      "10000000000000000\r\n",          // > 2^62
      "5;a\x01\r\nhello\r\n0\r\n\r\n",  // control byte in extension
      "0\r\n bad: fold\r\n\r\n",        // obs-fold in trailers
      "0\r\nBad Name: x\r\n\r\n",       // invalid trailer name
      "0\r\nX: a\rb\r\n\r\n",           // bare CR in trailer
      "0\r\n\rx",                       // bare CR after the last chunk
  };
  for (auto b : bad) {
    auto d = decode(b);
    EXPECT_TRUE(d.error) << "accepted: " << b;
    auto one = decode(b, 1);
    EXPECT_TRUE(one.error) << "accepted bytewise: " << b;
  }
}

TEST(ChunkedDecoder, BoundsExtensionsAndTrailers) {
  std::string ext = "1;" + std::string(ChunkedDecoder::kMaxExtension + 1, 'x') + "\r\na\r\n0\r\n\r\n";
  EXPECT_TRUE(decode(ext).error);
  std::string trailers = "0\r\n";
  while (trailers.size() < ChunkedDecoder::kMaxTrailerBytes + 100) trailers += "X-T: " + std::string(100, 'v') + "\r\n";
  trailers += "\r\n";
  EXPECT_TRUE(decode(trailers).error);
}

TEST(ChunkedDecoder, LargeChunkStreamsInSlices) {
  // A 2^40-byte chunk announces fine and streams as it arrives.
  ChunkedDecoder d;
  auto s = d.step("10000000000\r\nabc");
  ASSERT_EQ(s.kind, ChunkStep::Data);
  EXPECT_EQ(s.data, "abc");
}

TEST(ChunkedDecoder, SizeLine) {
  EXPECT_EQ(chunk_size_line(0), "0\r\n");
  EXPECT_EQ(chunk_size_line(255), "ff\r\n");
  EXPECT_EQ(chunk_size_line(65536), "10000\r\n");
}
