// The FUSE wire format as the guest kernel speaks it (structs from the Linux
// uapi header <linux/fuse.h>): bounded parsing of requests, building replies.
// Nothing here trusts the guest: every read is bounds-checked and every name
// is checked before anyone uses it.
#pragma once

#include <linux/fuse.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gondolin/vfs.h"

namespace gondolin::vfs::fuse {

// Largest read and write payload we negotiate (max_pages * 4 KiB).
inline constexpr std::uint32_t kMaxIo = 1u << 20;
inline constexpr std::uint16_t kMaxPages = kMaxIo / 4096;
// The largest request the kernel can send: a WRITE of kMaxIo bytes (xattr
// values are at most 64 KiB). Anything longer is a broken stream.
inline constexpr std::size_t kMaxRequest = sizeof(fuse_in_header) + sizeof(fuse_write_in) + kMaxIo;
inline constexpr std::size_t kMaxNameLength = 255;
inline constexpr std::size_t kMaxSymlinkLength = 4095;
inline constexpr std::size_t kMaxXattrValue = 65536;
inline constexpr std::size_t kMaxXattrName = 255;
// The oldest protocol minor we accept (Linux 5.4); the Debian 6.1 kernel speaks 7.37.
inline constexpr std::uint32_t kMinMinor = 31;

// One request: validated header and a cursor over its body.
class Request {
 public:
  // nullopt if `bytes` is not one whole request (length mismatch, extensions
  // we never negotiated).
  // `external_bytes`: a WRITE whose data stays in the transport's buffers;
  // the header's length counts them, `bytes` holds the rest.
  static std::optional<Request> parse(std::span<const std::uint8_t> bytes, std::size_t external_bytes = 0);

  const fuse_in_header& header() const { return header_; }
  std::uint32_t opcode() const { return header_.opcode; }
  std::uint64_t unique() const { return header_.unique; }
  std::uint64_t nodeid() const { return header_.nodeid; }
  Caller caller() const { return Caller{header_.uid, header_.gid, header_.pid}; }

  // Reads a fixed-size struct. `min_size` accepts a shorter one (the rest
  // reads as zero) and is only for structs that make up the whole body, like
  // INIT's, which older kernels send shorter.
  template <typename T>
  std::optional<T> take(std::size_t min_size = sizeof(T)) {
    if (!ok_ || min_size > sizeof(T) || left() < min_size) return fail<T>();
    T out{};
    std::size_t n = std::min(sizeof(T), left());
    std::memcpy(&out, body_.data() + pos_, n);
    pos_ += n;
    return out;
  }
  // A directory entry name: 1..255 bytes, NUL-terminated, no '/', not "." or "..".
  std::optional<std::string_view> name();
  // A NUL-terminated string of 1..max bytes (symlink targets, xattr names).
  std::optional<std::string_view> c_string(std::size_t max);
  // The next `n` bytes exactly (write data, xattr values).
  std::optional<std::span<const std::uint8_t>> bytes(std::size_t n);
  bool at_end() const { return ok_ && pos_ == body_.size(); }
  // The errno for a request that failed to parse: ENAMETOOLONG if a name was
  // only too long, EINVAL otherwise.
  int parse_error() const { return name_too_long_ ? ENAMETOOLONG : EINVAL; }

 private:
  template <typename T>
  std::optional<T> fail() {
    ok_ = false;
    return std::nullopt;
  }
  std::size_t left() const { return body_.size() - pos_; }

  fuse_in_header header_{};
  std::span<const std::uint8_t> body_;
  std::size_t pos_ = 0;
  bool ok_ = true;
  bool name_too_long_ = false;
};

bool valid_name(std::string_view name);

// ---- Replies ------------------------------------------------------------------

// A reply under construction: header first, payload appended after.
class Reply {
 public:
  explicit Reply(std::uint64_t unique, std::size_t reserve = 0);
  template <typename T>
  void append(const T& value) {
    append_bytes(&value, sizeof(T));
  }
  void append_bytes(const void* data, std::size_t size);
  // Makes room for `size` bytes at the end and returns them (for reads into the reply).
  std::span<char> grow(std::size_t size);
  void shrink_payload_to(std::size_t payload_size);
  std::size_t payload_size() const { return buf_.size() - sizeof(fuse_out_header); }
  // Fills in the header's length and returns the finished message.
  std::vector<std::uint8_t> finish() &&;

 private:
  std::vector<std::uint8_t> buf_;
};

std::vector<std::uint8_t> error_reply(std::uint64_t unique, int error_number);
template <typename T>
std::vector<std::uint8_t> struct_reply(std::uint64_t unique, const T& value) {
  Reply r(unique, sizeof(T));
  r.append(value);
  return std::move(r).finish();
}
std::vector<std::uint8_t> empty_reply(std::uint64_t unique);
// The header of a reply whose `payload_bytes` the transport already holds.
std::vector<std::uint8_t> header_only_reply(std::uint64_t unique, std::size_t payload_bytes);

fuse_attr to_fuse_attr(const Attr& a);
// Seconds + nanoseconds of a cache timeout, as the kernel wants them.
std::pair<std::uint64_t, std::uint32_t> split_timeout(std::chrono::milliseconds ms);

// Packs directory entries (READDIR / READDIRPLUS) into at most `limit` bytes.
class DirentWriter {
 public:
  DirentWriter(std::uint64_t unique, std::size_t limit);
  // Each returns false, writing nothing, when the entry does not fit.
  bool add(const DirEntry& e);
  bool fits_plus(std::string_view name) const;
  void add_plus(const DirEntry& e, const fuse_entry_out& entry);
  bool empty() const { return reply_.payload_size() == 0; }
  std::vector<std::uint8_t> finish() && { return std::move(reply_).finish(); }

 private:
  Reply reply_;
  std::size_t limit_;
};

const char* opcode_name(std::uint32_t opcode);

}  // namespace gondolin::vfs::fuse
