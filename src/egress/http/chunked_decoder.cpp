#include "egress/http/chunked_decoder.h"

#include <algorithm>

#include "egress/http/http_message.h"

namespace gondolin::egress {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_text(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

}  // namespace

ChunkStep ChunkedDecoder::fail(std::string why, std::size_t consumed) {
  state_ = State::Failed;
  error_ = std::move(why);
  return ChunkStep{ChunkStep::Error, consumed, {}};
}

ChunkStep ChunkedDecoder::step(std::string_view in) {
  if (state_ == State::Failed) return ChunkStep{ChunkStep::Error, 0, {}};
  std::size_t i = 0;
  while (i < in.size()) {
    if (state_ == State::Data) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size_, in.size() - i));
      size_ -= n;
      if (size_ == 0) state_ = State::DataCr;
      return ChunkStep{ChunkStep::Data, i + n, in.substr(i, n)};
    }
    if (state_ == State::Done) break;
    const char c = in[i++];
    switch (state_) {
      case State::SizeStart:
      case State::Size: {
        int v = hex_value(c);
        if (v >= 0) {
          if (++digits_ > 16 || size_ > (kMaxChunkSize >> 4)) return fail("chunk size too large", i);
          size_ = (size_ << 4) | static_cast<std::uint64_t>(v);
          state_ = State::Size;
        } else if (state_ == State::SizeStart) {
          return fail("invalid chunk size", i);
        } else if (c == ';') {
          state_ = State::Ext;
        } else if (c == ' ' || c == '\t') {
          state_ = State::SizeBws;
        } else if (c == '\r') {
          state_ = State::SizeLf;
        } else {
          return fail("invalid chunk size", i);
        }
        break;
      }
      case State::SizeBws:
        if (c == ';')
          state_ = State::Ext;
        else if (c != ' ' && c != '\t')
          return fail("invalid chunk size line", i);
        if (++ext_bytes_ > kMaxExtension) return fail("chunk extension too long", i);
        break;
      case State::Ext:
        if (c == '\r')
          state_ = State::SizeLf;
        else if (!is_text(static_cast<unsigned char>(c)))
          return fail("control character in a chunk extension", i);
        if (++ext_bytes_ > kMaxExtension) return fail("chunk extension too long", i);
        break;
      case State::SizeLf:
        if (c != '\n') return fail("bare CR in a chunk size line", i);
        if (size_ > kMaxChunkSize) return fail("chunk size too large", i);
        digits_ = 0;
        ext_bytes_ = 0;
        state_ = size_ == 0 ? State::TrailerStart : State::Data;
        break;
      case State::DataCr:
        if (c != '\r') return fail("chunk data not followed by CRLF", i);
        state_ = State::DataLf;
        break;
      case State::DataLf:
        if (c != '\n') return fail("chunk data not followed by CRLF", i);
        state_ = State::SizeStart;
        break;
      case State::TrailerStart:
        if (c == '\r')
          state_ = State::FinalLf;
        else if (is_token_char(c))
          state_ = State::TrailerName;
        else
          return fail(c == ' ' || c == '\t' ? "obsolete line folding in trailers" : "invalid trailer line", i);
        break;
      case State::TrailerName:
        if (c == ':')
          state_ = State::TrailerValue;
        else if (!is_token_char(c))
          return fail("invalid trailer name", i);
        break;
      case State::TrailerValue:
        if (c == '\r')
          state_ = State::TrailerLf;
        else if (!is_text(static_cast<unsigned char>(c)))
          return fail("control character in a trailer", i);
        break;
      case State::TrailerLf:
        if (c != '\n') return fail("bare CR in trailers", i);
        state_ = State::TrailerStart;
        break;
      case State::FinalLf:
        if (c != '\n') return fail("bare CR after the last chunk", i);
        state_ = State::Done;
        return ChunkStep{ChunkStep::Done, i, {}};
      case State::Data:
      case State::Done:
      case State::Failed: break;
    }
    if (state_ >= State::TrailerStart && ++trailer_bytes_ > kMaxTrailerBytes) return fail("trailers too large", i);
  }
  return ChunkStep{state_ == State::Done ? ChunkStep::Done : ChunkStep::NeedMore, i, {}};
}

std::string chunk_size_line(std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  char buf[20];
  std::size_t n = 0;
  do {
    buf[n++] = kHex[size & 0xf];
    size >>= 4;
  } while (size != 0);
  std::string out(buf, n);
  std::reverse(out.begin(), out.end());
  out += "\r\n";
  return out;
}

}  // namespace gondolin::egress
