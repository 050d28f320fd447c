// Test helpers: building FUSE requests as the guest kernel would, and reading
// the server's replies.
#pragma once

#include <linux/fuse.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfs/fuse_server.h"

namespace gondolin::vfs::testing {

using Bytes = std::vector<std::uint8_t>;

class RequestBuilder {
 public:
  RequestBuilder(std::uint32_t opcode, std::uint64_t nodeid) {
    header_.opcode = opcode;
    header_.nodeid = nodeid;
    header_.unique = next_unique_ += 2;
  }
  template <typename T>
  RequestBuilder& add(const T& value) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&value);
    body_.insert(body_.end(), p, p + sizeof(T));
    return *this;
  }
  RequestBuilder& add_string(std::string_view s, bool nul = true) {
    body_.insert(body_.end(), s.begin(), s.end());
    if (nul) body_.push_back(0);
    return *this;
  }
  RequestBuilder& caller(std::uint32_t uid, std::uint32_t gid) {
    header_.uid = uid;
    header_.gid = gid;
    return *this;
  }
  Bytes build() const {
    fuse_in_header h = header_;
    h.len = static_cast<std::uint32_t>(sizeof h + body_.size());
    Bytes out(sizeof h);
    std::memcpy(out.data(), &h, sizeof h);
    out.insert(out.end(), body_.begin(), body_.end());
    return out;
  }
  std::uint64_t unique() const { return header_.unique; }

 private:
  static inline std::uint64_t next_unique_ = 0;
  fuse_in_header header_{};
  Bytes body_;
};

struct ParsedReply {
  fuse_out_header header{};
  Bytes payload;
  int error() const { return -header.error; }
  template <typename T>
  T as() const {
    T out{};
    std::memcpy(&out, payload.data(), std::min(sizeof(T), payload.size()));
    return out;
  }
  std::string text() const { return std::string(payload.begin(), payload.end()); }
};

inline ParsedReply parse_reply(const Bytes& bytes) {
  ParsedReply r;
  std::memcpy(&r.header, bytes.data(), sizeof r.header);
  r.payload.assign(bytes.begin() + sizeof r.header, bytes.end());
  return r;
}

struct DirentView {
  std::string name;
  std::uint64_t ino = 0, off = 0, nodeid = 0;
  std::uint32_t type = 0;
};

inline std::vector<DirentView> parse_dirents(const Bytes& payload, bool plus) {
  std::vector<DirentView> out;
  std::size_t pos = 0;
  while (pos < payload.size()) {
    DirentView v;
    if (plus) {
      fuse_entry_out e{};
      std::memcpy(&e, payload.data() + pos, sizeof e);
      v.nodeid = e.nodeid;
      pos += sizeof e;
    }
    fuse_dirent d{};
    std::memcpy(&d, payload.data() + pos, FUSE_NAME_OFFSET);
    v.ino = d.ino;
    v.off = d.off;
    v.type = d.type;
    v.name.assign(reinterpret_cast<const char*>(payload.data() + pos + FUSE_NAME_OFFSET), d.namelen);
    pos += FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + d.namelen);
    out.push_back(std::move(v));
  }
  return out;
}

// A server plus the usual requests, for readable tests.
class ServerDriver {
 public:
  explicit ServerDriver(std::shared_ptr<Provider> p, MountOptions o = {}, ServerLimits l = {})
      : server(std::move(p), o, l) {}

  ParsedReply send(const RequestBuilder& b) {
    auto out = server.handle(b.build());
    last_fatal = out.fatal;
    if (!out.reply) return ParsedReply{};
    return parse_reply(*out.reply);
  }
  ParsedReply init(std::uint32_t minor = 37, std::uint32_t flags = 0xffffffff) {
    fuse_init_in in{};
    in.major = 7;
    in.minor = minor;
    in.max_readahead = 128 * 1024;
    in.flags = flags;
    return send(RequestBuilder(FUSE_INIT, 0).add(in));
  }
  ParsedReply lookup(std::uint64_t parent, std::string_view name) {
    return send(RequestBuilder(FUSE_LOOKUP, parent).add_string(name));
  }
  std::uint64_t lookup_id(std::uint64_t parent, std::string_view name) {
    auto r = lookup(parent, name);
    return r.error() ? 0 : r.as<fuse_entry_out>().nodeid;
  }
  ParsedReply mkdir(std::uint64_t parent, std::string_view name, std::uint32_t mode = 0755) {
    fuse_mkdir_in in{mode, 0};
    return send(RequestBuilder(FUSE_MKDIR, parent).add(in).add_string(name));
  }
  // CREATE: returns (nodeid, fh) or error in `err`.
  std::pair<std::uint64_t, std::uint64_t> create(std::uint64_t parent, std::string_view name, int& err,
                                                 std::uint32_t flags = 0101 /* O_WRONLY|O_CREAT */) {
    fuse_create_in in{};
    in.flags = flags;
    in.mode = 0100644;
    auto r = send(RequestBuilder(FUSE_CREATE, parent).add(in).add_string(name));
    err = r.error();
    if (err) return {0, 0};
    fuse_entry_out e{};
    fuse_open_out o{};
    std::memcpy(&e, r.payload.data(), sizeof e);
    std::memcpy(&o, r.payload.data() + sizeof e, sizeof o);
    return {e.nodeid, o.fh};
  }
  ParsedReply open(std::uint64_t node, std::uint32_t flags, bool dir = false) {
    fuse_open_in in{flags, 0};
    return send(RequestBuilder(dir ? FUSE_OPENDIR : FUSE_OPEN, node).add(in));
  }
  ParsedReply write(std::uint64_t node, std::uint64_t fh, std::uint64_t offset, std::string_view data) {
    fuse_write_in in{};
    in.fh = fh;
    in.offset = offset;
    in.size = static_cast<std::uint32_t>(data.size());
    return send(RequestBuilder(FUSE_WRITE, node).add(in).add_string(data, false));
  }
  ParsedReply read(std::uint64_t node, std::uint64_t fh, std::uint64_t offset, std::uint32_t size,
                   std::uint32_t opcode = FUSE_READ) {
    fuse_read_in in{};
    in.fh = fh;
    in.offset = offset;
    in.size = size;
    return send(RequestBuilder(opcode, node).add(in));
  }
  ParsedReply release(std::uint64_t node, std::uint64_t fh, bool dir = false) {
    fuse_release_in in{};
    in.fh = fh;
    return send(RequestBuilder(dir ? FUSE_RELEASEDIR : FUSE_RELEASE, node).add(in));
  }
  ParsedReply getattr(std::uint64_t node) { return send(RequestBuilder(FUSE_GETATTR, node).add(fuse_getattr_in{})); }
  ParsedReply unlink(std::uint64_t parent, std::string_view name) {
    return send(RequestBuilder(FUSE_UNLINK, parent).add_string(name));
  }
  void forget(std::uint64_t node, std::uint64_t n) { send(RequestBuilder(FUSE_FORGET, node).add(fuse_forget_in{n})); }

  FuseServer server;
  std::string last_fatal;
};

}  // namespace gondolin::vfs::testing
