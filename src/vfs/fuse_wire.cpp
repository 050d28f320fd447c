#include "vfs/fuse_wire.h"

#include <algorithm>

namespace gondolin::vfs::fuse {

std::optional<Request> Request::parse(std::span<const std::uint8_t> bytes, std::size_t external_bytes) {
  if (bytes.size() < sizeof(fuse_in_header) || external_bytes > kMaxRequest ||
      bytes.size() > kMaxRequest - external_bytes)
    return std::nullopt;
  Request r;
  std::memcpy(&r.header_, bytes.data(), sizeof(fuse_in_header));
  // Extensions (security contexts, supplementary groups) are only sent when
  // negotiated, and we never negotiate them.
  if (r.header_.len != bytes.size() + external_bytes || r.header_.total_extlen != 0) return std::nullopt;
  r.body_ = bytes.subspan(sizeof(fuse_in_header));
  return r;
}

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameLength && name != "." && name != ".." &&
         name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

std::optional<std::string_view> Request::c_string(std::size_t max) {
  if (!ok_) return std::nullopt;
  const auto* start = reinterpret_cast<const char*>(body_.data() + pos_);
  const void* nul = std::memchr(start, 0, std::min(left(), max + 1));
  if (!nul) return fail<std::string_view>();
  std::string_view s(start, static_cast<std::size_t>(static_cast<const char*>(nul) - start));
  if (s.empty()) return fail<std::string_view>();
  pos_ += s.size() + 1;
  return s;
}

std::optional<std::string_view> Request::name() {
  // The kernel passes names up to 1024 bytes; longer than 255 is the file
  // system's "name too long", not a malformed request.
  auto s = c_string(1024);
  if (s && s->size() > kMaxNameLength && s->find('/') == std::string_view::npos) name_too_long_ = true;
  if (!s || !valid_name(*s)) return fail<std::string_view>();
  return s;
}

std::optional<std::span<const std::uint8_t>> Request::bytes(std::size_t n) {
  if (!ok_ || left() < n) return fail<std::span<const std::uint8_t>>();
  auto out = body_.subspan(pos_, n);
  pos_ += n;
  return out;
}

Reply::Reply(std::uint64_t unique, std::size_t reserve) {
  buf_.reserve(sizeof(fuse_out_header) + reserve);
  fuse_out_header h{};
  h.unique = unique;
  buf_.resize(sizeof h);
  std::memcpy(buf_.data(), &h, sizeof h);
}

void Reply::append_bytes(const void* data, std::size_t size) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  buf_.insert(buf_.end(), p, p + size);
}

std::span<char> Reply::grow(std::size_t size) {
  std::size_t at = buf_.size();
  buf_.resize(at + size);
  return {reinterpret_cast<char*>(buf_.data() + at), size};
}

void Reply::shrink_payload_to(std::size_t payload_size) {
  buf_.resize(std::min(buf_.size(), sizeof(fuse_out_header) + payload_size));
}

std::vector<std::uint8_t> Reply::finish() && {
  auto len = static_cast<std::uint32_t>(buf_.size());
  std::memcpy(buf_.data(), &len, sizeof len);
  return std::move(buf_);
}

std::vector<std::uint8_t> error_reply(std::uint64_t unique, int error_number) {
  fuse_out_header h{};
  h.len = sizeof h;
  h.error = -std::clamp(error_number, 1, 4095);
  h.unique = unique;
  std::vector<std::uint8_t> out(sizeof h);
  std::memcpy(out.data(), &h, sizeof h);
  return out;
}

std::vector<std::uint8_t> empty_reply(std::uint64_t unique) { return Reply(unique).finish(); }

std::vector<std::uint8_t> header_only_reply(std::uint64_t unique, std::size_t payload_bytes) {
  auto out = Reply(unique).finish();
  const auto len = static_cast<std::uint32_t>(sizeof(fuse_out_header) + payload_bytes);
  std::memcpy(out.data(), &len, sizeof len);
  return out;
}

fuse_attr to_fuse_attr(const Attr& a) {
  fuse_attr f{};
  f.ino = a.ino;
  f.size = a.size;
  f.blocks = a.blocks;
  f.atime = static_cast<std::uint64_t>(a.atime.sec);
  f.mtime = static_cast<std::uint64_t>(a.mtime.sec);
  f.ctime = static_cast<std::uint64_t>(a.ctime.sec);
  f.atimensec = a.atime.nsec;
  f.mtimensec = a.mtime.nsec;
  f.ctimensec = a.ctime.nsec;
  f.mode = a.mode;
  f.nlink = a.nlink;
  f.uid = a.uid;
  f.gid = a.gid;
  f.rdev = a.rdev;
  f.blksize = a.blksize;
  return f;
}

std::pair<std::uint64_t, std::uint32_t> split_timeout(std::chrono::milliseconds ms) {
  auto count = std::max<std::int64_t>(0, ms.count());
  return {static_cast<std::uint64_t>(count / 1000), static_cast<std::uint32_t>((count % 1000) * 1000000)};
}

DirentWriter::DirentWriter(std::uint64_t unique, std::size_t limit)
    : reply_(unique, std::min<std::size_t>(limit, 64 * 1024)), limit_(limit) {}

namespace {
std::size_t dirent_size(std::size_t name_length) { return FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + name_length); }
std::size_t direntplus_size(std::size_t name_length) {
  return FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + name_length);
}

void put_dirent(Reply& reply, const DirEntry& e, std::size_t padded) {
  fuse_dirent d{};
  d.ino = e.ino;
  d.off = e.next_offset;
  d.namelen = static_cast<std::uint32_t>(e.name.size());
  d.type = (e.type & S_IFMT) >> 12;
  reply.append_bytes(&d, FUSE_NAME_OFFSET);
  reply.append_bytes(e.name.data(), e.name.size());
  static const char zeros[8] = {};
  reply.append_bytes(zeros, padded - FUSE_NAME_OFFSET - e.name.size());
}
}  // namespace

bool DirentWriter::add(const DirEntry& e) {
  std::size_t size = dirent_size(e.name.size());
  if (reply_.payload_size() + size > limit_) return false;
  put_dirent(reply_, e, size);
  return true;
}

bool DirentWriter::fits_plus(std::string_view name) const {
  return reply_.payload_size() + direntplus_size(name.size()) <= limit_;
}

void DirentWriter::add_plus(const DirEntry& e, const fuse_entry_out& entry) {
  reply_.append(entry);
  put_dirent(reply_, e, direntplus_size(e.name.size()) - sizeof(fuse_entry_out));
}

const char* opcode_name(std::uint32_t opcode) {
  switch (opcode) {
    case FUSE_LOOKUP: return "LOOKUP";
    case FUSE_FORGET: return "FORGET";
    case FUSE_GETATTR: return "GETATTR";
    case FUSE_SETATTR: return "SETATTR";
    case FUSE_READLINK: return "READLINK";
    case FUSE_SYMLINK: return "SYMLINK";
    case FUSE_MKNOD: return "MKNOD";
    case FUSE_MKDIR: return "MKDIR";
    case FUSE_UNLINK: return "UNLINK";
    case FUSE_RMDIR: return "RMDIR";
    case FUSE_RENAME: return "RENAME";
    case FUSE_LINK: return "LINK";
    case FUSE_OPEN: return "OPEN";
    case FUSE_READ: return "READ";
    case FUSE_WRITE: return "WRITE";
    case FUSE_STATFS: return "STATFS";
    case FUSE_RELEASE: return "RELEASE";
    case FUSE_FSYNC: return "FSYNC";
    case FUSE_SETXATTR: return "SETXATTR";
    case FUSE_GETXATTR: return "GETXATTR";
    case FUSE_LISTXATTR: return "LISTXATTR";
    case FUSE_REMOVEXATTR: return "REMOVEXATTR";
    case FUSE_FLUSH: return "FLUSH";
    case FUSE_INIT: return "INIT";
    case FUSE_OPENDIR: return "OPENDIR";
    case FUSE_READDIR: return "READDIR";
    case FUSE_RELEASEDIR: return "RELEASEDIR";
    case FUSE_FSYNCDIR: return "FSYNCDIR";
    case FUSE_GETLK: return "GETLK";
    case FUSE_SETLK: return "SETLK";
    case FUSE_SETLKW: return "SETLKW";
    case FUSE_ACCESS: return "ACCESS";
    case FUSE_CREATE: return "CREATE";
    case FUSE_INTERRUPT: return "INTERRUPT";
    case FUSE_BMAP: return "BMAP";
    case FUSE_DESTROY: return "DESTROY";
    case FUSE_IOCTL: return "IOCTL";
    case FUSE_POLL: return "POLL";
    case FUSE_NOTIFY_REPLY: return "NOTIFY_REPLY";
    case FUSE_BATCH_FORGET: return "BATCH_FORGET";
    case FUSE_FALLOCATE: return "FALLOCATE";
    case FUSE_READDIRPLUS: return "READDIRPLUS";
    case FUSE_RENAME2: return "RENAME2";
    case FUSE_LSEEK: return "LSEEK";
    case FUSE_COPY_FILE_RANGE: return "COPY_FILE_RANGE";
    case FUSE_SYNCFS: return "SYNCFS";
    default: return "UNKNOWN";
  }
}

}  // namespace gondolin::vfs::fuse
