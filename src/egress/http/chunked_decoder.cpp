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

// One byte of a chunk-size line (size, whitespace, extension, CRLF):
// nullptr, or why the line is invalid.
const char* ChunkedDecoder::size_line_byte(char c) {
  switch (state_) {
    case State::SizeStart:
    case State::Size: {
      int v = hex_value(c);
      if (v >= 0) {
        if (++digits_ > 16 || size_ > (kMaxChunkSize >> 4)) return "chunk size too large";
        size_ = (size_ << 4) | static_cast<std::uint64_t>(v);
        state_ = State::Size;
      } else if (state_ == State::SizeStart) {
        return "invalid chunk size";
      } else if (c == ';') {
        state_ = State::Ext;
      } else if (c == ' ' || c == '\t') {
        state_ = State::SizeBws;
      } else if (c == '\r') {
        state_ = State::SizeLf;
      } else {
        return "invalid chunk size";
      }
      return nullptr;
    }
    case State::SizeBws:
      if (c == ';')
        state_ = State::Ext;
      else if (c != ' ' && c != '\t')
        return "invalid chunk size line";
      if (++ext_bytes_ > kMaxExtension) return "chunk extension too long";
      return nullptr;
    case State::Ext:
      if (c == '\r')
        state_ = State::SizeLf;
      else if (!is_text(static_cast<unsigned char>(c)))
        return "control character in a chunk extension";
      if (++ext_bytes_ > kMaxExtension) return "chunk extension too long";
      return nullptr;
    case State::SizeLf:
      if (c != '\n') return "bare CR in a chunk size line";
      if (size_ > kMaxChunkSize) return "chunk size too large";
      digits_ = 0;
      ext_bytes_ = 0;
      state_ = size_ == 0 ? State::TrailerStart : State::Data;
      return nullptr;
    default: return nullptr;
  }
}

// One byte of the CRLF after chunk data, of the trailers, or of the final
// CRLF: nullptr, or why it is invalid.
const char* ChunkedDecoder::framing_byte(char c) {
  // The states that take exactly one byte and move on.
  struct Expect {
    State state;
    char byte;
    State next;
    const char* error;
  };
  static constexpr Expect kExpect[] = {
      {State::DataCr, '\r', State::DataLf, "chunk data not followed by CRLF"},
      {State::DataLf, '\n', State::SizeStart, "chunk data not followed by CRLF"},
      {State::TrailerLf, '\n', State::TrailerStart, "bare CR in trailers"},
      {State::FinalLf, '\n', State::Done, "bare CR after the last chunk"},
  };
  for (const Expect& e : kExpect)
    if (state_ == e.state) {
      if (c != e.byte) return e.error;
      state_ = e.next;
      return nullptr;
    }
  switch (state_) {
    case State::TrailerStart:
      if (c == '\r')
        state_ = State::FinalLf;
      else if (is_token_char(c))
        state_ = State::TrailerName;
      else
        return c == ' ' || c == '\t' ? "obsolete line folding in trailers" : "invalid trailer line";
      return nullptr;
    case State::TrailerName:
      if (c == ':')
        state_ = State::TrailerValue;
      else if (!is_token_char(c))
        return "invalid trailer name";
      return nullptr;
    case State::TrailerValue:
      if (c == '\r')
        state_ = State::TrailerLf;
      else if (!is_text(static_cast<unsigned char>(c)))
        return "control character in a trailer";
      return nullptr;
    default: return nullptr;
  }
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
    const char* why = state_ <= State::SizeLf ? size_line_byte(c) : framing_byte(c);
    if (why) return fail(why, i);
    if (state_ == State::Done) return ChunkStep{ChunkStep::Done, i, {}};
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
