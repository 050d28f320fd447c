// Strict incremental decoder for the chunked transfer coding. Pure (no I/O):
// feed it whatever bytes are buffered; it returns body data as slices of the
// input, so bodies stream without copies and without buffering.
//
// Rejected: non-hex or overlong sizes (overflow), whitespace other than before
// an extension, bare CR/LF, control bytes in extensions or trailers, oversized
// extensions or trailers. Extensions and trailers are dropped, not forwarded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gondolin::egress {

struct ChunkStep {
  enum Kind { NeedMore, Data, Done, Error };
  Kind kind = NeedMore;
  std::size_t consumed = 0;  // bytes of the input used up (framing and data)
  std::string_view data;     // Data: body bytes, a slice of the input
};

class ChunkedDecoder {
 public:
  static constexpr std::uint64_t kMaxChunkSize = std::uint64_t{1} << 62;
  static constexpr std::size_t kMaxExtension = 1024;
  static constexpr std::size_t kMaxTrailerBytes = 8192;

  ChunkStep step(std::string_view input);
  const std::string& error() const { return error_; }
  bool done() const { return state_ == State::Done; }

 private:
  enum class State {
    SizeStart,
    Size,
    SizeBws,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
    Failed
  };
  ChunkStep fail(std::string why, std::size_t consumed);
  const char* size_line_byte(char c);
  const char* framing_byte(char c);

  State state_ = State::SizeStart;
  std::uint64_t size_ = 0;  // size being read, then bytes left in the chunk
  std::size_t digits_ = 0;
  std::size_t ext_bytes_ = 0;
  std::size_t trailer_bytes_ = 0;
  std::string error_;
};

// "<hex size>\r\n", the framing before `size` bytes of chunk data.
std::string chunk_size_line(std::size_t size);

}  // namespace gondolin::egress
