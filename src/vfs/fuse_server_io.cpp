// File and directory I/O: open/create, read/write, release, sync, listings,
// extended attributes, fallocate and SEEK_DATA/SEEK_HOLE.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/xattr.h>

#include <cerrno>

#include "vfs/fuse_server.h"

namespace gondolin::vfs {

using fuse::error_reply;
using fuse::Request;

namespace {
// What reaches a provider's open(): access mode and the flags that change
// what a write does. O_DIRECT would impose the guest's alignment on the
// host; O_NOATIME fails for files the host user does not own.
constexpr int kPassedOpenFlags = O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC;
}  // namespace

int FuseServer::open_flags_for_provider(int guest_flags) const {
  int f = guest_flags & kPassedOpenFlags;
  if (writeback_) {
    // The guest kernel keeps the file position of O_APPEND writes itself and
    // may read pages of a write-only file to fill partial pages.
    f &= ~O_APPEND;
    if ((f & O_ACCMODE) == O_WRONLY) f = (f & ~O_ACCMODE) | O_RDWR;
  }
  return f;
}

FuseServer::Bytes FuseServer::open(Request& req) {
  auto in = req.take<fuse_open_in>();
  if (!in || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  const bool dir = req.opcode() == FUSE_OPENDIR;
  const int guest_flags = static_cast<int>(in->flags);
  if ((guest_flags & O_ACCMODE) == O_ACCMODE) return error_reply(req.unique(), req.parse_error());
  int error = 0;
  auto path = node_path(req.nodeid(), error);
  if (!path) return error_reply(req.unique(), error);
  if (handles_.size() >= limits_.max_handles) return error_reply(req.unique(), EMFILE);
  int flags = open_flags_for_provider(guest_flags);
  Result<Handle> h = dir ? provider_->opendir(*path) : provider_->open(*path, flags);
  if (!h && !dir && h.error() == EACCES && flags != (guest_flags & kPassedOpenFlags)) {
    flags = guest_flags & kPassedOpenFlags & ~(writeback_ ? O_APPEND : 0);
    h = provider_->open(*path, flags);
  }
  // ENOSYS would make the guest kernel stop sending opens altogether.
  if (!h) return error_reply(req.unique(), h.error() == ENOSYS ? EOPNOTSUPP : h.error());
  auto fh = add_handle(OpenFile{*h, req.nodeid(), flags, dir});
  if (!fh) {
    if (dir)
      provider_->releasedir(*h);
    else
      provider_->release(*h);
    return error_reply(req.unique(), EMFILE);
  }
  fuse_open_out out{};
  out.fh = *fh;
  if (!dir) out.open_flags = file_open_flags(guest_flags, *h);
  return fuse::struct_reply(req.unique(), out);
}

std::uint32_t FuseServer::file_open_flags(int guest_flags, Handle handle) {
  if (options_.direct_io) return FOPEN_DIRECT_IO;  // no page cache, so nothing to keep
  if (options_.transport == FsTransport::Virtiofs && !writeback_) {
    // cache=auto over virtio-fs: bulk data skips the guest page cache, whose
    // copies are what a TCG guest does slowest; the guest process's pages
    // are the transfer buffers. Writes through a write-only descriptor
    // (nothing can map one), and reads of big files opened read-only.
    // Everything else (small files, O_RDWR: databases, mmap) is cached.
    const int access = guest_flags & O_ACCMODE;
    if (access == O_WRONLY) return FOPEN_DIRECT_IO;
    if (access == O_RDONLY) {
      Result<Attr> attr = provider_->fgetattr(handle);
      if (attr && attr->size >= kDirectReadBytes) return FOPEN_DIRECT_IO;
    }
  }
  return options_.keep_cache ? FOPEN_KEEP_CACHE : 0;
}

FuseServer::Bytes FuseServer::create(Request& req) {
  auto in = req.take<fuse_create_in>();
  auto name = req.name();
  if (!in || !name || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  const int guest_flags = static_cast<int>(in->flags);
  if ((guest_flags & O_ACCMODE) == O_ACCMODE) return error_reply(req.unique(), req.parse_error());
  int error = 0;
  auto path = child_path(req.nodeid(), *name, error);
  if (!path) return error_reply(req.unique(), error);
  if (handles_.size() >= limits_.max_handles) return error_reply(req.unique(), EMFILE);
  const int flags = open_flags_for_provider(guest_flags);
  auto created = provider_->create(*path, flags, (in->mode & 07777) | S_IFREG, req.caller());
  if (!created) return error_reply(req.unique(), created.error() == ENOSYS ? EOPNOTSUPP : created.error());
  auto id = plausible_attr(created->attr) ? nodes_.remember(req.nodeid(), *name, created->attr.mode) : std::nullopt;
  auto fh = id ? add_handle(OpenFile{created->handle, *id, flags, false}) : std::nullopt;
  if (!fh) {
    provider_->release(created->handle);
    if (id) nodes_.forget(*id, 1);
    return error_reply(req.unique(), id ? EMFILE : EIO);
  }
  fuse::Reply r(req.unique(), sizeof(fuse_entry_out) + sizeof(fuse_open_out));
  r.append(make_entry(*id, created->attr));
  fuse_open_out out{};
  out.fh = *fh;
  out.open_flags = file_open_flags(guest_flags, created->handle);
  r.append(out);
  return std::move(r).finish();
}

FuseServer::Bytes FuseServer::read(Request& req) {
  auto in = req.take<fuse_read_in>();
  if (!in || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  if (in->size > fuse::kMaxIo || in->offset > static_cast<std::uint64_t>(INT64_MAX))
    return error_reply(req.unique(), req.parse_error());
  OpenFile* f = find_handle(in->fh, false);
  if (!f) return error_reply(req.unique(), handle_errno(in->fh));
  if (!data_.read_into.empty()) {
    std::vector<std::span<char>> pieces;
    std::size_t want = in->size;
    for (auto piece : data_.read_into) {
      if (want == 0) break;
      pieces.push_back(piece.first(std::min(piece.size(), want)));
      want -= pieces.back().size();
    }
    auto n = provider_->read_vectored(f->provider_handle, in->offset, pieces);
    if (!n) return error_reply(req.unique(), n.error());
    data_in_place_ = std::min<std::size_t>(*n, in->size - want);
    return fuse::header_only_reply(req.unique(), data_in_place_);
  }
  fuse::Reply r(req.unique(), in->size);
  auto n = provider_->read(f->provider_handle, in->offset, r.grow(in->size));
  if (!n) return error_reply(req.unique(), n.error());
  r.shrink_payload_to(std::min<std::size_t>(*n, in->size));
  return std::move(r).finish();
}

FuseServer::Bytes FuseServer::write(Request& req) {
  auto in = req.take<fuse_write_in>();
  if (!in || in->size > fuse::kMaxIo || in->offset > static_cast<std::uint64_t>(INT64_MAX))
    return error_reply(req.unique(), req.parse_error());
  const bool external = !data_.write_from.empty();
  std::optional<std::span<const std::uint8_t>> data;
  if (external) {
    std::size_t total = 0;
    for (auto piece : data_.write_from) total += piece.size();
    if (total != in->size || !req.at_end()) return error_reply(req.unique(), EINVAL);
  } else {
    data = req.bytes(in->size);
    if (!data || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  }
  OpenFile* f = find_handle(in->fh, false);
  if (!f) return error_reply(req.unique(), handle_errno(in->fh));
  auto n = external ? provider_->write_vectored(f->provider_handle, in->offset, data_.write_from)
                    : provider_->write(f->provider_handle, in->offset,
                                       {reinterpret_cast<const char*>(data->data()), data->size()});
  if (!n) return error_reply(req.unique(), n.error());
  fuse_write_out out{};
  out.size = static_cast<std::uint32_t>(std::min<std::size_t>(*n, in->size));
  return fuse::struct_reply(req.unique(), out);
}

FuseServer::Bytes FuseServer::release(Request& req) {
  auto in = req.take<fuse_release_in>();
  if (!in || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  const bool dir = req.opcode() == FUSE_RELEASEDIR;
  auto it = handles_.find(in->fh);
  if (it == handles_.end() || it->second.directory != dir) return error_reply(req.unique(), EBADF);
  if (it->second.live) {
    if (dir)
      provider_->releasedir(it->second.provider_handle);
    else
      provider_->release(it->second.provider_handle);
  }
  handles_.erase(it);
  return fuse::empty_reply(req.unique());
}

FuseServer::Bytes FuseServer::sync(Request& req) {
  std::uint64_t fh = 0;
  bool datasync = false;
  if (req.opcode() == FUSE_FLUSH) {
    auto in = req.take<fuse_flush_in>();
    if (!in || !req.at_end()) return error_reply(req.unique(), req.parse_error());
    fh = in->fh;
  } else {
    auto in = req.take<fuse_fsync_in>();
    if (!in || !req.at_end()) return error_reply(req.unique(), req.parse_error());
    fh = in->fh;
    datasync = (in->fsync_flags & FUSE_FSYNC_FDATASYNC) != 0;
  }
  if (req.opcode() == FUSE_FSYNCDIR) {
    if (!find_handle(fh, true)) return error_reply(req.unique(), handle_errno(fh));
    return fuse::empty_reply(req.unique());
  }
  OpenFile* f = find_handle(fh, false);
  if (!f) return error_reply(req.unique(), handle_errno(fh));
  Status s = req.opcode() == FUSE_FLUSH ? provider_->flush(f->provider_handle)
                                        : provider_->fsync(f->provider_handle, datasync);
  // ENOSYS (a provider with nothing to flush) is meant for the kernel: it
  // stops sending FLUSH, a round trip per close().
  return s ? fuse::empty_reply(req.unique()) : error_reply(req.unique(), s.error());
}

FuseServer::Bytes FuseServer::readdir(Request& req) {
  auto in = req.take<fuse_read_in>();
  if (!in || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  if (in->size > fuse::kMaxIo) return error_reply(req.unique(), req.parse_error());
  OpenFile* f = find_handle(in->fh, true);
  if (!f) return error_reply(req.unique(), handle_errno(in->fh));
  const bool plus = req.opcode() == FUSE_READDIRPLUS;
  const std::uint64_t dir_node = f->nodeid;
  int error = 0;
  auto dir_path = node_path(dir_node, error);
  if (plus && !dir_path) return error_reply(req.unique(), error);
  fuse::DirentWriter out(req.unique(), in->size);
  Status s = provider_->readdir(f->provider_handle, in->offset, [&](const DirEntry& e) {
    if (e.next_offset == 0) return false;  // would restart the listing forever
    const bool dot = e.name == "." || e.name == "..";
    if (!dot && !fuse::valid_name(e.name)) return true;  // a provider bug; skip it
    if (!plus) return out.add(e);
    if (!out.fits_plus(e.name)) return false;
    if (dot) {
      // The kernel ignores these in READDIRPLUS and counts no lookup for them.
      out.add_plus(e, fuse_entry_out{});
      return true;
    }
    std::string child = dir_path->empty() ? e.name : *dir_path + "/" + e.name;
    auto attr = provider_->getattr(child);
    if (!attr || !plausible_attr(*attr)) return true;  // vanished meanwhile
    auto id = nodes_.remember(dir_node, e.name, attr->mode);
    if (!id) return false;
    out.add_plus(e, make_entry(*id, *attr));
    return true;
  });
  if (!s && out.empty()) return error_reply(req.unique(), s.error());
  return std::move(out).finish();
}

namespace {
// SETXATTR's body without FUSE_SETXATTR_EXT, which we never negotiate.
struct SetxattrIn {
  std::uint32_t size;
  std::uint32_t flags;
};

bool valid_xattr_name(std::string_view name) { return name.find('.') != std::string_view::npos; }
}  // namespace

FuseServer::Bytes FuseServer::xattr(Request& req) {
  int error = 0;
  auto path = node_path(req.nodeid(), error);
  const std::uint64_t unique = req.unique();
  switch (req.opcode()) {
    case FUSE_SETXATTR: {
      auto in = req.take<SetxattrIn>();
      auto name = req.c_string(fuse::kMaxXattrName);
      if (!in || !name || in->size > fuse::kMaxXattrValue || !valid_xattr_name(*name))
        return error_reply(unique, req.parse_error());
      auto value = req.bytes(in->size);
      if (!value || !req.at_end() || (in->flags & ~static_cast<std::uint32_t>(XATTR_CREATE | XATTR_REPLACE)))
        return error_reply(unique, req.parse_error());
      if (!path) return error_reply(unique, error);
      Status s = provider_->setxattr(*path, std::string(*name),
                                     std::string(reinterpret_cast<const char*>(value->data()), value->size()),
                                     static_cast<int>(in->flags));
      return s ? fuse::empty_reply(unique) : error_reply(unique, s.error());
    }
    case FUSE_REMOVEXATTR: {
      auto name = req.c_string(fuse::kMaxXattrName);
      if (!name || !req.at_end() || !valid_xattr_name(*name)) return error_reply(unique, req.parse_error());
      if (!path) return error_reply(unique, error);
      Status s = provider_->removexattr(*path, std::string(*name));
      return s ? fuse::empty_reply(unique) : error_reply(unique, s.error());
    }
    default: break;
  }
  // GETXATTR and LISTXATTR: size 0 asks for the length only.
  auto in = req.take<fuse_getxattr_in>();
  if (!in) return error_reply(unique, req.parse_error());
  std::string value;
  if (req.opcode() == FUSE_GETXATTR) {
    auto name = req.c_string(fuse::kMaxXattrName);
    if (!name || !req.at_end() || !valid_xattr_name(*name)) return error_reply(unique, req.parse_error());
    if (!path) return error_reply(unique, error);
    auto v = provider_->getxattr(*path, std::string(*name));
    if (!v) return error_reply(unique, v.error());
    value = std::move(*v);
  } else {
    if (!req.at_end()) return error_reply(unique, req.parse_error());
    if (!path) return error_reply(unique, error);
    auto names = provider_->listxattr(*path);
    if (!names) return error_reply(unique, names.error());
    for (const auto& n : *names)
      if (!n.empty() && n.find('\0') == std::string::npos) value += n + '\0';
  }
  if (value.size() > fuse::kMaxXattrValue) return error_reply(unique, E2BIG);
  if (in->size == 0) {
    fuse_getxattr_out out{};
    out.size = static_cast<std::uint32_t>(value.size());
    return fuse::struct_reply(unique, out);
  }
  if (value.size() > in->size) return error_reply(unique, ERANGE);
  fuse::Reply r(unique, value.size());
  r.append_bytes(value.data(), value.size());
  return std::move(r).finish();
}

FuseServer::Bytes FuseServer::fallocate(Request& req) {
  auto in = req.take<fuse_fallocate_in>();
  if (!in || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  if (in->offset > static_cast<std::uint64_t>(INT64_MAX) ||
      in->length > static_cast<std::uint64_t>(INT64_MAX) - in->offset)
    return error_reply(req.unique(), EFBIG);
  OpenFile* f = find_handle(in->fh, false);
  if (!f) return error_reply(req.unique(), handle_errno(in->fh));
  Status s = provider_->fallocate(f->provider_handle, static_cast<int>(in->mode), in->offset, in->length);
  return s ? fuse::empty_reply(req.unique()) : error_reply(req.unique(), s.error());
}

FuseServer::Bytes FuseServer::lseek(Request& req) {
  auto in = req.take<fuse_lseek_in>();
  if (!in || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  if ((in->whence != SEEK_DATA && in->whence != SEEK_HOLE) || in->offset > static_cast<std::uint64_t>(INT64_MAX))
    return error_reply(req.unique(), req.parse_error());
  OpenFile* f = find_handle(in->fh, false);
  if (!f) return error_reply(req.unique(), handle_errno(in->fh));
  auto off = provider_->lseek(f->provider_handle, in->offset, static_cast<int>(in->whence));
  if (!off) return error_reply(req.unique(), off.error());
  fuse_lseek_out out{};
  out.offset = *off;
  return fuse::struct_reply(req.unique(), out);
}

}  // namespace gondolin::vfs
