// vfs::memory: a file system that lives in this process's memory and dies
// with the VM (a snapshot saves it: SavableContents, memory_tree). File data
// is kept in 64 KiB chunks that exist only where something was written, so
// sparse files cost what they hold.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "gondolin/vfs.h"
#include "vfs/memory_tree.h"
#include "vfs/savable_contents.h"

namespace gondolin::vfs {
namespace {

using memory_tree::kChunk;
using memory_tree::kFirstEntryOffset;
using memory_tree::kMaxFileSize;
using memory_tree::Node;
using memory_tree::NodePtr;

Timespec now() {
  struct timespec t {};
  ::clock_gettime(CLOCK_REALTIME, &t);
  return Timespec{static_cast<std::int64_t>(t.tv_sec), static_cast<std::uint32_t>(t.tv_nsec)};
}

class Memory final : public Provider, public SavableContents {
 public:
  explicit Memory(MemoryOptions options) : options_(options) {
    root_ = make_node(S_IFDIR | 0755, Caller{});
    root_->attr.nlink = 2;
  }

  Result<Attr> getattr(const std::string& path) override {
    auto n = resolve(path);
    if (!n) return Errno{n.error()};
    return (*n)->attr;
  }

  Result<Attr> setattr(const std::string& path, const SetAttr& c) override {
    auto n = resolve(path);
    if (!n) return Errno{n.error()};
    return apply(**n, c);
  }
  Result<Attr> fsetattr(Handle h, const SetAttr& c) override {
    auto it = files_.find(h);
    if (it == files_.end()) return Errno{EBADF};
    return apply(*it->second.node, c);
  }
  Result<Attr> fgetattr(Handle h) override {
    auto it = files_.find(h);
    if (it == files_.end()) return Errno{EBADF};
    return it->second.node->attr;
  }

  Result<std::string> readlink(const std::string& path) override {
    auto n = resolve(path);
    if (!n) return Errno{n.error()};
    if (!S_ISLNK((*n)->attr.mode)) return Errno{EINVAL};
    return (*n)->target;
  }

  Result<Attr> mknod(const std::string& path, std::uint32_t mode, std::uint32_t rdev, const Caller& caller) override {
    std::uint32_t type = mode & S_IFMT;
    if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR && type != S_IFBLK)
      return Errno{EINVAL};
    auto n = add_entry(path, type | (mode & 07777), caller);
    if (!n) return Errno{n.error()};
    (*n)->attr.rdev = rdev;
    return (*n)->attr;
  }

  Result<Attr> mkdir(const std::string& path, std::uint32_t mode, const Caller& caller) override {
    auto n = add_entry(path, S_IFDIR | (mode & 07777), caller);
    if (!n) return Errno{n.error()};
    return (*n)->attr;
  }

  Result<Attr> symlink(const std::string& target, const std::string& path, const Caller& caller) override {
    if (!charge(target.size())) return Errno{ENOSPC};
    auto n = add_entry(path, S_IFLNK | 0777, caller);
    if (!n) {
      bytes_ -= target.size();
      return Errno{n.error()};
    }
    (*n)->target = target;
    (*n)->attr.size = target.size();
    return (*n)->attr;
  }

  Result<Attr> link(const std::string& existing, const std::string& new_path) override {
    auto src = resolve(existing);
    if (!src) return Errno{src.error()};
    if ((*src)->is_dir()) return Errno{EPERM};
    auto parent = parent_of(new_path);
    if (!parent) return Errno{parent.error()};
    if (parent->dir->entries.count(parent->name)) return Errno{EEXIST};
    if (!charge(parent->name.size())) return Errno{ENOSPC};
    insert(*parent->dir, parent->name, *src);
    (*src)->attr.nlink++;
    (*src)->attr.ctime = now();
    return (*src)->attr;
  }

  Status unlink(const std::string& path) override {
    auto parent = parent_of(path);
    if (!parent) return Errno{parent.error()};
    auto it = parent->dir->entries.find(parent->name);
    if (it == parent->dir->entries.end()) return Errno{ENOENT};
    if (it->second.first->is_dir()) return Errno{EISDIR};
    drop(*parent->dir, it);
    return {};
  }

  Status rmdir(const std::string& path) override {
    if (path.empty()) return Errno{EBUSY};
    auto parent = parent_of(path);
    if (!parent) return Errno{parent.error()};
    auto it = parent->dir->entries.find(parent->name);
    if (it == parent->dir->entries.end()) return Errno{ENOENT};
    if (!it->second.first->is_dir()) return Errno{ENOTDIR};
    if (!it->second.first->entries.empty()) return Errno{ENOTEMPTY};
    drop(*parent->dir, it);
    return {};
  }

  Status rename(const std::string& from, const std::string& to, unsigned flags) override;

  Result<Handle> open(const std::string& path, int flags) override {
    auto n = resolve(path);
    if (!n) return Errno{n.error()};
    if ((*n)->is_dir()) return Errno{EISDIR};
    if (!S_ISREG((*n)->attr.mode)) return Errno{EACCES};
    if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) truncate(**n, 0);
    Handle h = next_handle_++;
    files_[h] = OpenFile{*n, flags};
    return h;
  }

  Result<Created> create(const std::string& path, int flags, std::uint32_t mode, const Caller& caller) override {
    auto n = add_entry(path, S_IFREG | (mode & 07777), caller);
    if (!n) return Errno{n.error()};
    Handle h = next_handle_++;
    files_[h] = OpenFile{*n, flags};
    return Created{h, (*n)->attr};
  }

  Result<std::size_t> read(Handle h, std::uint64_t offset, std::span<char> into) override {
    auto it = files_.find(h);
    if (it == files_.end() || (it->second.flags & O_ACCMODE) == O_WRONLY) return Errno{EBADF};
    Node& n = *it->second.node;
    if (offset >= n.attr.size) return std::size_t{0};
    std::size_t total = static_cast<std::size_t>(std::min<std::uint64_t>(into.size(), n.attr.size - offset));
    std::size_t done = 0;
    while (done < total) {
      std::uint64_t pos = offset + done;
      std::size_t in_chunk = static_cast<std::size_t>(pos % kChunk);
      std::size_t n_bytes = std::min<std::size_t>(total - done, kChunk - in_chunk);
      auto c = n.chunks.find(pos / kChunk);
      if (c == n.chunks.end())
        std::memset(into.data() + done, 0, n_bytes);
      else
        std::memcpy(into.data() + done, c->second.data() + in_chunk, n_bytes);
      done += n_bytes;
    }
    return total;
  }

  Result<std::size_t> write(Handle h, std::uint64_t offset, std::span<const char> data) override {
    auto it = files_.find(h);
    if (it == files_.end() || (it->second.flags & O_ACCMODE) == O_RDONLY) return Errno{EBADF};
    Node& n = *it->second.node;
    if (it->second.flags & O_APPEND) offset = n.attr.size;
    if (offset + data.size() > kMaxFileSize) return Errno{EFBIG};
    std::size_t done = 0;
    while (done < data.size()) {
      std::uint64_t pos = offset + done;
      std::size_t in_chunk = static_cast<std::size_t>(pos % kChunk);
      std::size_t n_bytes = std::min<std::size_t>(data.size() - done, kChunk - in_chunk);
      auto c = n.chunks.find(pos / kChunk);
      if (c == n.chunks.end()) {
        if (!charge(kChunk)) {
          if (done == 0) return Errno{ENOSPC};
          break;
        }
        c = n.chunks.emplace(pos / kChunk, std::string(kChunk, '\0')).first;
        n.attr.blocks += kChunk / 512;
      }
      std::memcpy(c->second.data() + in_chunk, data.data() + done, n_bytes);
      done += n_bytes;
    }
    n.attr.size = std::max(n.attr.size, offset + done);
    n.attr.mtime = n.attr.ctime = now();
    return done;
  }

  void release(Handle h) override {
    auto it = files_.find(h);
    if (it == files_.end()) return;
    NodePtr node = it->second.node;
    files_.erase(it);
    free_if_gone(*node);
  }

  Status fallocate(Handle h, int mode, std::uint64_t offset, std::uint64_t length) override {
    auto it = files_.find(h);
    if (it == files_.end()) return Errno{EBADF};
    if (mode == 0) {
      Node& n = *it->second.node;
      if (offset + length > kMaxFileSize) return Errno{EFBIG};
      n.attr.size = std::max(n.attr.size, offset + length);
      return {};
    }
    return Errno{EOPNOTSUPP};
  }

  Result<std::uint64_t> lseek(Handle h, std::uint64_t offset, int whence) override {
    auto it = files_.find(h);
    if (it == files_.end()) return Errno{EBADF};
    const Node& n = *it->second.node;
    if (offset >= n.attr.size) return Errno{ENXIO};
    auto c = n.chunks.lower_bound(offset / kChunk);
    if (whence == SEEK_DATA) {
      if (c == n.chunks.end()) return Errno{ENXIO};
      return std::max(offset, c->first * kChunk);
    }
    // SEEK_HOLE: the first chunk index at or after offset's that is missing.
    std::uint64_t index = offset / kChunk;
    while (c != n.chunks.end() && c->first == index) {
      ++c;
      ++index;
    }
    return std::min(n.attr.size, std::max(offset, index * kChunk));
  }

  Result<Handle> opendir(const std::string& path) override {
    auto n = resolve(path);
    if (!n) return Errno{n.error()};
    if (!(*n)->is_dir()) return Errno{ENOTDIR};
    Handle h = next_handle_++;
    dirs_[h] = *n;
    return h;
  }

  Status readdir(Handle h, std::uint64_t offset, const std::function<bool(const DirEntry&)>& emit) override {
    auto it = dirs_.find(h);
    if (it == dirs_.end()) return Errno{EBADF};
    const Node& d = *it->second;
    if (offset < 1 && !emit(DirEntry{".", S_IFDIR, d.attr.ino, 1})) return {};
    if (offset < 2 && !emit(DirEntry{"..", S_IFDIR, 0, 2})) return {};
    for (auto e = d.by_serial.lower_bound(std::max(offset, kFirstEntryOffset)); e != d.by_serial.end(); ++e) {
      const Node& child = *d.entries.at(e->second).first;
      if (!emit(DirEntry{e->second, child.attr.mode & S_IFMT, child.attr.ino, e->first + 1})) return {};
    }
    return {};
  }

  void releasedir(Handle h) override { dirs_.erase(h); }

  Result<StatFs> statfs() override {
    StatFs s;
    s.bsize = s.frsize = 4096;
    s.blocks = options_.max_bytes / 4096;
    s.bfree = s.bavail = (options_.max_bytes - std::min(bytes_, options_.max_bytes)) / 4096;
    s.files = options_.max_files;
    s.ffree = options_.max_files - std::min(files_count_, options_.max_files);
    return s;
  }

  Result<std::string> getxattr(const std::string& path, const std::string& name) override {
    auto n = resolve(path);
    if (!n) return Errno{n.error()};
    auto it = (*n)->xattrs.find(name);
    if (it == (*n)->xattrs.end()) return Errno{ENODATA};
    return it->second;
  }
  Result<std::vector<std::string>> listxattr(const std::string& path) override {
    auto n = resolve(path);
    if (!n) return Errno{n.error()};
    std::vector<std::string> out;
    for (const auto& [k, v] : (*n)->xattrs) out.push_back(k);
    return out;
  }
  Status setxattr(const std::string& path, const std::string& name, const std::string& value, int flags) override {
    if (name.rfind("user.", 0) != 0) return Errno{EPERM};
    auto n = resolve(path);
    if (!n) return Errno{n.error()};
    auto& x = (*n)->xattrs;
    bool exists = x.count(name) != 0;
    if ((flags & XATTR_CREATE) && exists) return Errno{EEXIST};
    if ((flags & XATTR_REPLACE) && !exists) return Errno{ENODATA};
    if (!charge(name.size() + value.size())) return Errno{ENOSPC};
    if (exists) bytes_ -= name.size() + x[name].size();
    x[name] = value;
    (*n)->attr.ctime = now();
    return {};
  }
  // A snapshot can rebuild the mount; its files come from save_contents().
  std::string describe() const override {
    return nlohmann::json{{"kind", "memory"}, {"max_bytes", options_.max_bytes}, {"max_files", options_.max_files}}
        .dump();
  }
  std::string save_contents() const override { return memory_tree::encode_tree(*root_, next_ino_); }
  std::string load_contents(std::string_view saved) override {
    std::string why;
    auto tree = memory_tree::decode_tree(saved, options_, why);
    if (!tree) return why;
    root_ = tree->root;
    next_ino_ = tree->next_ino;
    bytes_ = tree->bytes;
    files_count_ = tree->files;
    files_.clear();
    dirs_.clear();
    return "";
  }

  Status removexattr(const std::string& path, const std::string& name) override {
    auto n = resolve(path);
    if (!n) return Errno{n.error()};
    auto it = (*n)->xattrs.find(name);
    if (it == (*n)->xattrs.end()) return Errno{ENODATA};
    bytes_ -= name.size() + it->second.size();
    (*n)->xattrs.erase(it);
    return {};
  }

 private:
  struct OpenFile {
    NodePtr node;
    int flags = 0;
  };
  struct Parent {
    Node* dir;
    std::string name;
  };

  bool charge(std::uint64_t bytes) {
    if (bytes_ + bytes > options_.max_bytes) return false;
    bytes_ += bytes;
    return true;
  }

  NodePtr make_node(std::uint32_t mode, const Caller& caller) {
    auto n = std::make_shared<Node>();
    n->attr.ino = next_ino_++;
    n->attr.mode = mode;
    n->attr.nlink = S_ISDIR(mode) ? 2 : 1;
    n->attr.uid = caller.uid;
    n->attr.gid = caller.gid;
    n->attr.atime = n->attr.mtime = n->attr.ctime = now();
    return n;
  }

  Result<NodePtr> resolve(const std::string& path) const {
    NodePtr cur = root_;
    std::size_t pos = 0;
    while (pos < path.size()) {
      std::size_t end = path.find('/', pos);
      if (end == std::string::npos) end = path.size();
      if (!cur->is_dir()) return Errno{ENOTDIR};
      auto it = cur->entries.find(path.substr(pos, end - pos));
      if (it == cur->entries.end()) return Errno{ENOENT};
      cur = it->second.first;
      pos = end + 1;
    }
    return cur;
  }

  Result<Parent> parent_of(const std::string& path) const {
    if (path.empty()) return Errno{EBUSY};
    auto slash = path.rfind('/');
    auto dir = resolve(slash == std::string::npos ? std::string() : path.substr(0, slash));
    if (!dir) return Errno{dir.error()};
    if (!(*dir)->is_dir()) return Errno{ENOTDIR};
    return Parent{dir->get(), slash == std::string::npos ? path : path.substr(slash + 1)};
  }

  void insert(Node& dir, const std::string& name, const NodePtr& child) {
    std::uint64_t serial = dir.next_serial++;
    dir.entries[name] = {child, serial};
    dir.by_serial[serial] = name;
    if (child->is_dir()) dir.attr.nlink++;
    dir.attr.mtime = dir.attr.ctime = now();
  }

  using EntryIt = decltype(Node::entries)::iterator;
  // Removes the name only; the node itself may live on under another name.
  void remove_name(Node& dir, EntryIt it) {
    bytes_ -= std::min<std::uint64_t>(bytes_, it->first.size());
    if (it->second.first->is_dir()) dir.attr.nlink--;
    dir.by_serial.erase(it->second.second);
    dir.entries.erase(it);
    dir.attr.mtime = dir.attr.ctime = now();
  }

  void drop(Node& dir, EntryIt it) {
    NodePtr child = it->second.first;
    remove_name(dir, it);
    child->attr.nlink = child->is_dir() ? 0 : child->attr.nlink - std::min<std::uint32_t>(child->attr.nlink, 1);
    child->attr.ctime = now();
    if (child->attr.nlink == 0) {
      files_count_ -= std::min<std::uint64_t>(files_count_, 1);
      free_if_gone(*child);
    }
  }

  // The data of an unlinked file stays while it is open (unlink-while-open).
  void free_if_gone(Node& n) {
    if (n.attr.nlink != 0) return;
    for (const auto& f : files_)
      if (f.second.node.get() == &n) return;
    bytes_ -= std::min<std::uint64_t>(bytes_, n.chunks.size() * kChunk + n.target.size());
    n.chunks.clear();
    n.target.clear();
  }

  Result<NodePtr> add_entry(const std::string& path, std::uint32_t mode, const Caller& caller) {
    auto parent = parent_of(path);
    if (!parent) return Errno{parent.error()};
    if (parent->dir->entries.count(parent->name)) return Errno{EEXIST};
    if (files_count_ >= options_.max_files || !charge(parent->name.size())) return Errno{ENOSPC};
    files_count_++;
    NodePtr n = make_node(mode, caller);
    insert(*parent->dir, parent->name, n);
    return n;
  }

  void truncate(Node& n, std::uint64_t size) {
    for (auto it = n.chunks.lower_bound((size + kChunk - 1) / kChunk); it != n.chunks.end();) {
      bytes_ -= kChunk;
      n.attr.blocks -= kChunk / 512;
      it = n.chunks.erase(it);
    }
    if (size % kChunk != 0)
      if (auto it = n.chunks.find(size / kChunk); it != n.chunks.end())
        std::memset(it->second.data() + size % kChunk, 0, kChunk - size % kChunk);
    n.attr.size = size;
    n.attr.mtime = n.attr.ctime = now();
  }

  Result<Attr> apply(Node& n, const SetAttr& c) {
    if (c.size) {
      if (n.is_dir()) return Errno{EISDIR};
      if (!S_ISREG(n.attr.mode)) return Errno{EINVAL};
      if (*c.size > kMaxFileSize) return Errno{EFBIG};
      truncate(n, *c.size);
    }
    if (c.mode) n.attr.mode = (n.attr.mode & S_IFMT) | (*c.mode & 07777);
    if (c.uid) n.attr.uid = *c.uid;
    if (c.gid) n.attr.gid = *c.gid;
    Timespec t = now();
    if (c.atime) n.attr.atime = c.atime->now ? t : c.atime->time;
    if (c.mtime) n.attr.mtime = c.mtime->now ? t : c.mtime->time;
    n.attr.ctime = t;
    return n.attr;
  }

  MemoryOptions options_;
  NodePtr root_;
  std::uint64_t next_ino_ = 1;
  std::uint64_t bytes_ = 0;
  std::uint64_t files_count_ = 0;
  Handle next_handle_ = 1;
  std::unordered_map<Handle, OpenFile> files_;
  std::unordered_map<Handle, NodePtr> dirs_;
};

Status Memory::rename(const std::string& from, const std::string& to, unsigned flags) {
  auto src = parent_of(from);
  if (!src) return Errno{src.error()};
  auto dst = parent_of(to);
  if (!dst) return Errno{dst.error()};
  auto s = src->dir->entries.find(src->name);
  if (s == src->dir->entries.end()) return Errno{ENOENT};
  NodePtr moving = s->second.first;
  if (to.size() > from.size() && to.compare(0, from.size(), from) == 0 && to[from.size()] == '/') return Errno{EINVAL};
  auto d = dst->dir->entries.find(dst->name);
  if (flags & RENAME_EXCHANGE) {
    if (d == dst->dir->entries.end()) return Errno{ENOENT};
    if (from.size() > to.size() && from.compare(0, to.size(), to) == 0 && from[to.size()] == '/') return Errno{EINVAL};
    NodePtr other = d->second.first;
    s->second.first = other;
    d->second.first = moving;
    if (moving->is_dir() != other->is_dir() && src->dir != dst->dir) {
      Node* gains = moving->is_dir() ? dst->dir : src->dir;
      Node* loses = moving->is_dir() ? src->dir : dst->dir;
      gains->attr.nlink++;
      loses->attr.nlink--;
    }
    src->dir->attr.mtime = dst->dir->attr.mtime = now();
    return {};
  }
  if (d != dst->dir->entries.end()) {
    if (flags & RENAME_NOREPLACE) return Errno{EEXIST};
    NodePtr target = d->second.first;
    if (target == moving) return {};  // two names of one file: nothing to do
    if (moving->is_dir() && !target->is_dir()) return Errno{ENOTDIR};
    if (!moving->is_dir() && target->is_dir()) return Errno{EISDIR};
    if (target->is_dir() && !target->entries.empty()) return Errno{ENOTEMPTY};
    drop(*dst->dir, d);
  }
  s = src->dir->entries.find(src->name);
  bytes_ += dst->name.size();
  remove_name(*src->dir, s);
  insert(*dst->dir, dst->name, moving);
  moving->attr.ctime = now();
  return {};
}

}  // namespace

std::shared_ptr<Provider> memory(MemoryOptions options) { return std::make_shared<Memory>(options); }

}  // namespace gondolin::vfs
