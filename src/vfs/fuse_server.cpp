// Dispatch, protocol negotiation and the name-space operations (lookup,
// attributes, create/remove/rename). File and directory I/O is in
// fuse_server_io.cpp.
#include "vfs/fuse_server.h"

#include <fcntl.h>
#include <linux/fs.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "proto/control_protocol.h"
#include "util/logging.h"
#include "vfs/file_type.h"

namespace gondolin::vfs {

using fuse::error_reply;
using fuse::Request;

bool plausible_attr(const Attr& a) { return known_file_type(a.mode); }

FuseServer::FuseServer(std::shared_ptr<Provider> provider, MountOptions options, ServerLimits limits)
    : provider_(std::move(provider)), options_(options), limits_(limits), nodes_(limits.max_nodes) {}

void FuseServer::end_session() {
  for (const auto& [fh, file] : handles_) {
    if (!file.live) continue;
    if (file.directory)
      provider_->releasedir(file.provider_handle);
    else
      provider_->release(file.provider_handle);
  }
  handles_.clear();
  nodes_ = NodeTable(limits_.max_nodes);
  initialized_ = false;
  writeback_ = false;
  minor_ = 0;
}

FuseServer::Outcome FuseServer::handle(std::span<const std::uint8_t> message, const DataBuffers& data) {
  Outcome out;
  std::size_t external = 0;
  for (auto piece : data.write_from) external += piece.size();
  auto req = Request::parse(message, external);
  if (!req) {
    out.fatal = "malformed FUSE request header";
    return out;
  }
  if (external > 0 && req->opcode() != FUSE_WRITE) {
    out.fatal = "request data outside the message for a non-WRITE request";
    return out;
  }
  data_ = data;
  data_in_place_ = 0;
  switch (req->opcode()) {
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET: forget(*req); return out;
    case FUSE_INTERRUPT:     // every request is answered before the next is read
    case FUSE_NOTIFY_REPLY:  // we never ask the kernel for data
      return out;
    default: break;
  }
  if (!initialized_ && req->opcode() != FUSE_INIT) {
    out.reply = error_reply(req->unique(), EIO);
    return out;
  }
  out.reply = dispatch(*req);
  out.data_in_place = std::exchange(data_in_place_, 0);
  data_ = {};
  return out;
}

FuseServer::Bytes FuseServer::dispatch(Request& req) {
  switch (req.opcode()) {
    case FUSE_INIT: return init(req);
    case FUSE_DESTROY: return fuse::empty_reply(req.unique());
    case FUSE_LOOKUP: return lookup(req);
    case FUSE_GETATTR: return getattr(req);
    case FUSE_SETATTR: return setattr(req);
    case FUSE_READLINK: return readlink(req);
    case FUSE_MKNOD:
    case FUSE_MKDIR:
    case FUSE_SYMLINK: return make_node(req);
    case FUSE_LINK: return link(req);
    case FUSE_UNLINK:
    case FUSE_RMDIR: return remove(req);
    case FUSE_RENAME:
    case FUSE_RENAME2: return rename(req);
    case FUSE_OPEN:
    case FUSE_OPENDIR: return open(req);
    case FUSE_CREATE: return create(req);
    case FUSE_READ: return read(req);
    case FUSE_WRITE: return write(req);
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR: return release(req);
    case FUSE_FLUSH:
    case FUSE_FSYNC:
    case FUSE_FSYNCDIR: return sync(req);
    case FUSE_READDIR:
    case FUSE_READDIRPLUS: return readdir(req);
    case FUSE_STATFS: return statfs(req);
    case FUSE_SETXATTR:
    case FUSE_GETXATTR:
    case FUSE_LISTXATTR:
    case FUSE_REMOVEXATTR: return xattr(req);
    case FUSE_FALLOCATE: return fallocate(req);
    case FUSE_LSEEK: return lseek(req);
    // Locks: ENOSYS makes the guest kernel keep POSIX and flock locks
    // locally, which is exact for every process inside this VM.
    // ACCESS: permission checks happen in the guest (default_permissions).
    default: return error_reply(req.unique(), ENOSYS);
  }
}

FuseServer::Bytes FuseServer::init(Request& req) {
  auto in = req.take<fuse_init_in>(16);
  if (!in || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  if (initialized_) return error_reply(req.unique(), EPROTO);
  if (in->major != FUSE_KERNEL_VERSION || in->minor < fuse::kMinMinor) {
    log().warn("vfs: guest kernel speaks FUSE {}.{}, need 7.{} or newer", in->major, in->minor, fuse::kMinMinor);
    return error_reply(req.unique(), EPROTO);
  }
  std::uint32_t wanted = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_AUTO_INVAL_DATA |
                         FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES |
                         FUSE_CACHE_SYMLINKS | FUSE_ASYNC_DIO;
  if (options_.writeback_cache && !provider_->read_only()) wanted |= FUSE_WRITEBACK_CACHE;
  fuse_init_out out{};
  out.major = FUSE_KERNEL_VERSION;
  out.minor = std::min<std::uint32_t>(in->minor, FUSE_KERNEL_MINOR_VERSION);
  out.max_readahead = std::min(in->max_readahead, fuse::kMaxIo);
  out.flags = in->flags & wanted;
  // Linux 6.6+ offers FUSE_DIRECT_IO_ALLOW_MMAP (flags2 bit 4, i.e. bit 36):
  // mmap(MAP_SHARED) of FOPEN_DIRECT_IO files then works.
  constexpr std::uint32_t kDirectIoAllowMmap = 1u << (36 - 32);
  if ((in->flags & FUSE_INIT_EXT) && (in->flags2 & kDirectIoAllowMmap)) {
    out.flags |= FUSE_INIT_EXT;
    out.flags2 = kDirectIoAllowMmap;
  }
  out.max_background = 64;
  out.congestion_threshold = 48;
  out.max_write = fuse::kMaxIo;
  out.time_gran = 1;
  out.max_pages = fuse::kMaxPages;
  initialized_ = true;
  minor_ = out.minor;
  writeback_ = (out.flags & FUSE_WRITEBACK_CACHE) != 0;
  return fuse::struct_reply(req.unique(), out);
}

// ---- Helpers ---------------------------------------------------------------------

std::optional<std::string> FuseServer::node_path(std::uint64_t nodeid, int& error) const {
  if (!nodes_.contains(nodeid)) {
    error = ESTALE;
    return std::nullopt;
  }
  auto p = nodes_.path(nodeid);
  if (!p) error = ENOENT;  // unlinked or replaced while the kernel still held it
  return p;
}

std::optional<std::string> FuseServer::child_path(std::uint64_t parent, std::string_view name, int& error) const {
  auto p = node_path(parent, error);
  if (!p) return std::nullopt;
  if (p->empty()) return std::string(name);
  p->push_back('/');
  p->append(name);
  return p;
}

int FuseServer::handle_errno(std::uint64_t fh) const {
  auto it = handles_.find(fh);
  return it != handles_.end() && !it->second.live ? ESTALE : EBADF;
}

FuseServer::OpenFile* FuseServer::find_handle(std::uint64_t fh, bool directory) {
  auto it = handles_.find(fh);
  if (it == handles_.end() || it->second.directory != directory || !it->second.live) return nullptr;
  return &it->second;
}

std::optional<std::uint64_t> FuseServer::add_handle(OpenFile file) {
  if (handles_.size() >= limits_.max_handles) return std::nullopt;
  std::uint64_t fh = next_fh_++;
  handles_.emplace(fh, file);
  return fh;
}

std::chrono::milliseconds FuseServer::attr_timeout_for(const Attr& attr) const {
  if (S_ISDIR(attr.mode)) return options_.attr_timeout;
  // Files with several names, unless linked through the guest, have one node
  // per name: a change through one name must show through the others.
  if (attr.nlink > 1) return std::chrono::milliseconds(0);
  return options_.attr_timeout;
}

fuse_attr_out FuseServer::make_attr_out(std::uint64_t nodeid, const Attr& attr) const {
  fuse_attr_out out{};
  auto [s, ns] = fuse::split_timeout(attr_timeout_for(attr));
  out.attr_valid = s;
  out.attr_valid_nsec = ns;
  out.attr = fuse::to_fuse_attr(attr);
  if (out.attr.ino == 0) out.attr.ino = nodeid;
  return out;
}

fuse_entry_out FuseServer::make_entry(std::uint64_t nodeid, const Attr& attr) const {
  fuse_entry_out e{};
  e.nodeid = nodeid;
  auto [es, ens] = fuse::split_timeout(options_.entry_timeout);
  auto [as, ans] = fuse::split_timeout(attr_timeout_for(attr));
  e.entry_valid = es;
  e.entry_valid_nsec = ens;
  e.attr_valid = as;
  e.attr_valid_nsec = ans;
  e.attr = fuse::to_fuse_attr(attr);
  if (e.attr.ino == 0) e.attr.ino = nodeid;
  return e;
}

FuseServer::Bytes FuseServer::entry_reply(std::uint64_t unique, std::uint64_t parent, std::string_view name,
                                          Result<Attr> attr) {
  if (!attr) return error_reply(unique, attr.error());
  if (!plausible_attr(*attr)) return error_reply(unique, EIO);
  auto id = nodes_.remember(parent, name, attr->mode);
  if (!id) return error_reply(unique, ENFILE);
  return fuse::struct_reply(unique, make_entry(*id, *attr));
}

// Attributes of a node: through the handle if the kernel gave one, by path
// otherwise, and through any open handle if the node lost its path (fstat of
// an unlinked file).
Result<Attr> FuseServer::attr_of(std::uint64_t nodeid, std::optional<std::uint64_t> fh) {
  if (fh) {
    if (OpenFile* f = find_handle(*fh, false)) {
      auto a = provider_->fgetattr(f->provider_handle);
      if (a.ok() || a.error() != ENOSYS) return a;
    }
  }
  int error = 0;
  if (auto path = node_path(nodeid, error)) return provider_->getattr(*path);
  if (error == ENOENT)
    for (auto& [id, f] : handles_)
      if (f.nodeid == nodeid && !f.directory && f.live) {
        auto a = provider_->fgetattr(f.provider_handle);
        if (a.ok()) return a;
      }
  return Errno{error};
}

// ---- Name space --------------------------------------------------------------------

FuseServer::Bytes FuseServer::lookup(Request& req) {
  auto name = req.name();
  if (!name || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  int error = 0;
  auto path = child_path(req.nodeid(), *name, error);
  if (!path) return error_reply(req.unique(), error);
  auto attr = provider_->getattr(*path);
  if (!attr && attr.error() == ENOENT && options_.entry_timeout.count() > 0) {
    // A cached "no such file": saves a round trip for every repeated miss
    // (PATH searches, Python imports, git's .gitignore probes).
    fuse_entry_out negative{};
    auto [s, ns] = fuse::split_timeout(options_.entry_timeout);
    negative.entry_valid = s;
    negative.entry_valid_nsec = ns;
    return fuse::struct_reply(req.unique(), negative);
  }
  return entry_reply(req.unique(), req.nodeid(), *name, std::move(attr));
}

void FuseServer::forget(Request& req) {
  if (req.opcode() == FUSE_FORGET) {
    if (auto in = req.take<fuse_forget_in>(); in && req.at_end()) nodes_.forget(req.nodeid(), in->nlookup);
    return;
  }
  auto in = req.take<fuse_batch_forget_in>();
  if (!in) return;
  for (std::uint32_t i = 0; i < in->count; ++i) {
    auto one = req.take<fuse_forget_one>();
    if (!one) return;
    nodes_.forget(one->nodeid, one->nlookup);
  }
}

FuseServer::Bytes FuseServer::getattr(Request& req) {
  auto in = req.take<fuse_getattr_in>();
  if (!in || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  std::optional<std::uint64_t> fh;
  if (in->getattr_flags & FUSE_GETATTR_FH) fh = in->fh;
  auto attr = attr_of(req.nodeid(), fh);
  if (!attr) return error_reply(req.unique(), attr.error());
  if (!plausible_attr(*attr)) return error_reply(req.unique(), EIO);
  return fuse::struct_reply(req.unique(), make_attr_out(req.nodeid(), *attr));
}

namespace {
std::optional<TimeChange> time_change(std::uint32_t valid, std::uint32_t set_bit, std::uint32_t now_bit,
                                      std::uint64_t sec, std::uint32_t nsec) {
  if (!(valid & set_bit)) return std::nullopt;
  TimeChange t;
  t.now = (valid & now_bit) != 0;
  t.time = Timespec{static_cast<std::int64_t>(sec), nsec};
  return t;
}
}  // namespace

FuseServer::Bytes FuseServer::setattr(Request& req) {
  auto in = req.take<fuse_setattr_in>();
  if (!in || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  if (in->atimensec > 999999999 || in->mtimensec > 999999999) return error_reply(req.unique(), req.parse_error());
  SetAttr changes;
  if (in->valid & FATTR_MODE) changes.mode = in->mode & 07777;
  if (in->valid & FATTR_UID) changes.uid = in->uid;
  if (in->valid & FATTR_GID) changes.gid = in->gid;
  if (in->valid & FATTR_SIZE) {
    if (in->size > static_cast<std::uint64_t>(INT64_MAX)) return error_reply(req.unique(), EFBIG);
    changes.size = in->size;
  }
  changes.atime = time_change(in->valid, FATTR_ATIME, FATTR_ATIME_NOW, in->atime, in->atimensec);
  changes.mtime = time_change(in->valid, FATTR_MTIME, FATTR_MTIME_NOW, in->mtime, in->mtimensec);

  Result<Attr> attr = Errno{ENOSYS};
  if (in->valid & FATTR_FH) {
    OpenFile* f = find_handle(in->fh, false);
    if (!f) return error_reply(req.unique(), handle_errno(in->fh));
    attr = provider_->fsetattr(f->provider_handle, changes);
  }
  if (!attr && attr.error() == ENOSYS) {
    int error = 0;
    auto path = node_path(req.nodeid(), error);
    if (!path) return error_reply(req.unique(), error);
    attr = provider_->setattr(*path, changes);
  }
  if (!attr) return error_reply(req.unique(), attr.error() == ENOSYS ? EPERM : attr.error());
  if (!plausible_attr(*attr)) return error_reply(req.unique(), EIO);
  return fuse::struct_reply(req.unique(), make_attr_out(req.nodeid(), *attr));
}

FuseServer::Bytes FuseServer::readlink(Request& req) {
  if (!req.at_end()) return error_reply(req.unique(), req.parse_error());
  int error = 0;
  auto path = node_path(req.nodeid(), error);
  if (!path) return error_reply(req.unique(), error);
  auto target = provider_->readlink(*path);
  if (!target) return error_reply(req.unique(), target.error());
  if (target->empty() || target->size() > fuse::kMaxSymlinkLength || target->find('\0') != std::string::npos)
    return error_reply(req.unique(), EIO);
  fuse::Reply r(req.unique(), target->size());
  r.append_bytes(target->data(), target->size());
  return std::move(r).finish();
}

FuseServer::Bytes FuseServer::make_node(Request& req) {
  std::optional<std::string_view> name;
  Result<Attr> attr = Errno{EINVAL};
  int error = 0;
  std::optional<std::string> path;
  const Caller caller = req.caller();
  switch (req.opcode()) {
    case FUSE_MKNOD: {
      auto in = req.take<fuse_mknod_in>();
      name = req.name();
      if (!in || !name || !req.at_end()) return error_reply(req.unique(), req.parse_error());
      if (!(path = child_path(req.nodeid(), *name, error))) return error_reply(req.unique(), error);
      attr = provider_->mknod(*path, in->mode, in->rdev, caller);
      break;
    }
    case FUSE_MKDIR: {
      auto in = req.take<fuse_mkdir_in>();
      name = req.name();
      if (!in || !name || !req.at_end()) return error_reply(req.unique(), req.parse_error());
      if (!(path = child_path(req.nodeid(), *name, error))) return error_reply(req.unique(), error);
      attr = provider_->mkdir(*path, in->mode & 07777, caller);
      break;
    }
    default: {  // SYMLINK: the new entry's name, then the link's target
      name = req.name();
      auto target = req.c_string(fuse::kMaxSymlinkLength);
      if (!name || !target || !req.at_end()) return error_reply(req.unique(), req.parse_error());
      if (!(path = child_path(req.nodeid(), *name, error))) return error_reply(req.unique(), error);
      attr = provider_->symlink(std::string(*target), *path, caller);
      break;
    }
  }
  return entry_reply(req.unique(), req.nodeid(), *name, std::move(attr));
}

FuseServer::Bytes FuseServer::link(Request& req) {
  auto in = req.take<fuse_link_in>();
  auto name = req.name();
  if (!in || !name || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  int error = 0;
  auto existing = node_path(in->oldnodeid, error);
  if (!existing) return error_reply(req.unique(), error);
  if (existing->empty()) return error_reply(req.unique(), EPERM);  // the root
  auto path = child_path(req.nodeid(), *name, error);
  if (!path) return error_reply(req.unique(), error);
  auto attr = provider_->link(*existing, *path);
  if (!attr) return error_reply(req.unique(), attr.error());
  if (!plausible_attr(*attr)) return error_reply(req.unique(), EIO);
  // The new name is the node the guest already holds, so its kernel updates
  // that inode's link count and attributes from this reply (virtio-fs could
  // not tell it to). Should the node not fit, the name gets a node of its own.
  auto id = nodes_.link(in->oldnodeid, req.nodeid(), *name, attr->mode);
  if (!id) return entry_reply(req.unique(), req.nodeid(), *name, std::move(attr));
  return fuse::struct_reply(req.unique(), make_entry(*id, *attr));
}

FuseServer::Bytes FuseServer::remove(Request& req) {
  auto name = req.name();
  if (!name || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  int error = 0;
  auto path = child_path(req.nodeid(), *name, error);
  if (!path) return error_reply(req.unique(), error);
  Status s = req.opcode() == FUSE_UNLINK ? provider_->unlink(*path) : provider_->rmdir(*path);
  if (!s) return error_reply(req.unique(), s.error());
  nodes_.detach(req.nodeid(), *name);
  return fuse::empty_reply(req.unique());
}

FuseServer::Bytes FuseServer::rename(Request& req) {
  std::uint64_t newdir = 0;
  std::uint32_t flags = 0;
  if (req.opcode() == FUSE_RENAME) {
    auto in = req.take<fuse_rename_in>();
    if (!in) return error_reply(req.unique(), req.parse_error());
    newdir = in->newdir;
  } else {
    auto in = req.take<fuse_rename2_in>();
    if (!in) return error_reply(req.unique(), req.parse_error());
    newdir = in->newdir;
    flags = in->flags;
  }
  auto from_name = req.name();
  auto to_name = req.name();
  if (!from_name || !to_name || !req.at_end()) return error_reply(req.unique(), req.parse_error());
  constexpr std::uint32_t kKnown = RENAME_NOREPLACE | RENAME_EXCHANGE;
  if ((flags & ~kKnown) != 0 || flags == kKnown) return error_reply(req.unique(), req.parse_error());
  int error = 0;
  auto from = child_path(req.nodeid(), *from_name, error);
  if (!from) return error_reply(req.unique(), error);
  auto to = child_path(newdir, *to_name, error);
  if (!to) return error_reply(req.unique(), error);
  // A directory moved into itself would cut its subtree off the root.
  if (to->size() > from->size() && to->compare(0, from->size(), *from) == 0 && (*to)[from->size()] == '/')
    return error_reply(req.unique(), req.parse_error());
  Status s = provider_->rename(*from, *to, flags);
  if (!s) return error_reply(req.unique(), s.error() == ENOSYS ? EOPNOTSUPP : s.error());
  if (flags & RENAME_EXCHANGE)
    nodes_.exchange(req.nodeid(), *from_name, newdir, *to_name);
  else
    nodes_.move(req.nodeid(), *from_name, newdir, *to_name);
  return fuse::empty_reply(req.unique());
}

FuseServer::Bytes FuseServer::statfs(Request& req) {
  if (!req.at_end()) return error_reply(req.unique(), req.parse_error());
  auto st = provider_->statfs();
  if (!st) return error_reply(req.unique(), st.error());
  fuse_statfs_out out{};
  out.st.blocks = st->blocks;
  out.st.bfree = st->bfree;
  out.st.bavail = st->bavail;
  out.st.files = st->files;
  out.st.ffree = st->ffree;
  out.st.bsize = st->bsize;
  out.st.frsize = st->frsize;
  out.st.namelen = std::min<std::uint32_t>(st->namelen, fuse::kMaxNameLength);
  return fuse::struct_reply(req.unique(), out);
}

// ---- Snapshot state -----------------------------------------------------------------

std::string FuseServer::export_state() const {
  proto::PayloadWriter w;
  w.u32(1);  // format version
  w.u64(next_fh_);
  w.u8(initialized_ ? 1 : 0);
  w.u32(minor_);
  w.u8(writeback_ ? 1 : 0);
  w.bytes(nodes_.serialize());
  w.u32(static_cast<std::uint32_t>(handles_.size()));
  for (const auto& [fh, f] : handles_) {
    w.u64(fh);
    w.u64(f.nodeid);
    w.u32(static_cast<std::uint32_t>(f.flags));
    w.u8(f.directory ? 1 : 0);
  }
  return std::string(w.data().begin(), w.data().end());
}

bool FuseServer::import_state(std::string_view state) {
  proto::PayloadReader r(reinterpret_cast<const std::uint8_t*>(state.data()), state.size());
  if (r.u32() != 1) return false;
  std::uint64_t next_fh = r.u64();
  bool initialized = r.u8() != 0;
  std::uint32_t minor = r.u32();
  bool writeback = r.u8() != 0;
  std::string table = r.bytes(proto::kMaxPayload * 64u);
  std::uint32_t count = r.u32();
  if (!r.ok() || count > limits_.max_handles || !nodes_.load(table)) return false;
  for (auto& [fh, f] : handles_) {
    if (!f.live) continue;
    if (f.directory)
      provider_->releasedir(f.provider_handle);
    else
      provider_->release(f.provider_handle);
  }
  handles_.clear();
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint64_t fh = r.u64();
    OpenFile f;
    f.nodeid = r.u64();
    f.flags = static_cast<int>(r.u32());
    f.directory = r.u8() != 0;
    if (!r.ok() || fh == 0 || fh >= next_fh || handles_.count(fh)) return false;
    // Re-open through the provider; a file that is gone stays a dead
    // handle: ESTALE on use, released quietly. O_CREAT/O_EXCL/O_TRUNC did
    // their work when the guest opened it and must not act again.
    f.live = false;
    if (auto path = nodes_.path(f.nodeid)) {
      Result<Handle> h =
          f.directory ? provider_->opendir(*path) : provider_->open(*path, f.flags & ~(O_TRUNC | O_CREAT | O_EXCL));
      if (h) {
        f.provider_handle = *h;
        f.live = true;
      }
    }
    handles_.emplace(fh, f);
  }
  if (!r.at_end()) return false;
  next_fh_ = next_fh;
  initialized_ = initialized;
  minor_ = minor;
  writeback_ = writeback;
  return true;
}

}  // namespace gondolin::vfs
