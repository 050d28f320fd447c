#include "image/layer_unpacker.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "gondolin/error.h"

namespace gondolin {
namespace fs = std::filesystem;

struct LayerUnpacker::Entry {
  std::string path;                // normalised: "usr/bin/env" ("" is the root itself)
  std::vector<std::string> parts;  // its components
  mode_t type = 0;                 // AE_IF*
  mode_t perm = 0;                 // 07777 bits
  std::uint32_t uid = 0, gid = 0;
  std::string symlink;                               // target text, as stored
  std::optional<std::vector<std::string>> hardlink;  // the linked path's components
  std::int64_t size = 0;
  struct timespec times[2] = {};  // atime, mtime
  std::vector<std::pair<std::string, std::string>> xattrs;
};

namespace {

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;

// A path as an error line shows it: printable, bounded.
std::string shown(const std::string& p) {
  std::string out = "\"";
  for (char c : p.substr(0, 160)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '"' || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + (p.size() > 160 ? "...\"" : "\"");
}

std::string join(const std::vector<std::string>& parts, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += (i ? "/" : "") + parts[i];
  return out;
}

std::optional<std::string> split_path(const char* raw, std::vector<std::string>& parts) {
  if (raw == nullptr) return std::string("an entry has no name");
  std::string p = raw;
  if (p.size() > 4096) return "path " + shown(p) + " is longer than 4096 bytes";
  if (!p.empty() && p[0] == '/') return "absolute path " + shown(p);
  parts.clear();
  std::size_t i = 0;
  while (i <= p.size()) {
    std::size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    std::string c = p.substr(i, j - i);
    i = j + 1;
    if (c.empty() || c == ".") continue;
    if (c == "..") return "path " + shown(p) + " leaves the root (..)";
    if (c.size() > 255) return "a name in " + shown(p) + " is longer than 255 bytes";
    parts.push_back(std::move(c));
  }
  return std::nullopt;
}

bool kept_xattr(const std::string& name) {
  return name.rfind("user.", 0) == 0 || name.rfind("security.", 0) == 0 || name.rfind("trusted.", 0) == 0;
}

std::optional<std::string> parse_entry(struct archive_entry* ent, LayerUnpacker::Entry& e);

// Removes whatever `name` is in `dirfd`, a directory with all it holds.
void remove_at(int dirfd, const std::string& name) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return;
  if (!S_ISDIR(st.st_mode)) {
    ::unlinkat(dirfd, name.c_str(), 0);
    return;
  }
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) {
    DIR* d = ::fdopendir(fd);
    std::vector<std::string> children;
    if (d != nullptr) {
      while (struct dirent* de = ::readdir(d))
        if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) children.emplace_back(de->d_name);
      for (const auto& c : children) remove_at(::dirfd(d), c);
      ::closedir(d);
    } else {
      ::close(fd);
    }
  }
  ::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR);
}

std::string errno_text(int err) { return std::strerror(err); }

// open_parent without `create`: a parent directory does not exist (not a refusal).
constexpr const char* kNoSuchParent = "(no such parent directory)";

}  // namespace

LayerUnpacker::LayerUnpacker(const fs::path& root, LayerLimits limits)
    : root_(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)), limits_(limits) {
  if (!root_) throw Error(ErrorKind::Image, "cannot open " + root.string() + ": " + errno_text(errno));
}

namespace {
ArchivePtr new_layer_reader() {
  ArchivePtr a(archive_read_new(), archive_read_free);
  // Only the compressions OCI layers use, all in-process (no filter that
  // runs an external program), and tar formats only.
  archive_read_support_filter_none(a.get());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_filter_xz(a.get());
  archive_read_support_format_tar(a.get());
  return a;
}

std::string unreadable(struct archive* a, const std::string& label) {
  const char* why = archive_error_string(a);
  return label + ": not a readable tar layer (" + (why ? why : "unknown error") + ")";
}
}  // namespace

std::optional<std::string> LayerUnpacker::apply_file(const fs::path& layer, const std::string& label) {
  ArchivePtr a = new_layer_reader();
  if (archive_read_open_filename(a.get(), layer.c_str(), 1 << 16) != ARCHIVE_OK) return unreadable(a.get(), label);
  return apply_archive(a.get(), label);
}

std::optional<std::string> LayerUnpacker::apply_memory(const void* data, std::size_t size, const std::string& label) {
  ArchivePtr a = new_layer_reader();
  if (archive_read_open_memory(a.get(), data, size) != ARCHIVE_OK) return unreadable(a.get(), label);
  return apply_archive(a.get(), label);
}

std::optional<std::string> LayerUnpacker::apply_archive(struct archive* a, const std::string& label) {
  laid_this_layer_.clear();
  dir_times_.clear();
  for (;;) {
    struct archive_entry* ent = nullptr;
    int r = archive_read_next_header(a, &ent);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return unreadable(a, label);
    if (++entries_ > limits_.max_entries)
      return label + ": more than " + std::to_string(limits_.max_entries) + " entries";
    Entry e;
    if (auto bad = parse_entry(ent, e)) return label + ": " + *bad;
    if (e.size > 0 && (bytes_ += static_cast<std::uint64_t>(e.size)) > limits_.max_bytes)
      return label + ": the layers hold more than " + std::to_string(limits_.max_bytes >> 30) + " GiB";
    if (auto bad = apply_entry(a, e)) return label + ": " + *bad;
  }
  // Directory times last: adding entries changed them.
  for (const auto& [parts, mtime] : dir_times_) {
    UniqueFd parent;
    if (open_parent(parts, false, parent)) continue;
    struct timespec times[2] = {mtime, mtime};
    ::utimensat(parent.get(), parts.back().c_str(), times, AT_SYMLINK_NOFOLLOW);
  }
  return std::nullopt;
}

namespace {
std::optional<std::string> parse_entry(struct archive_entry* ent, LayerUnpacker::Entry& e) {
  const char* name = archive_entry_pathname_utf8(ent);
  if (name == nullptr) name = archive_entry_pathname(ent);
  if (auto bad = split_path(name, e.parts)) return bad;
  e.path = join(e.parts, e.parts.size());
  e.type = archive_entry_filetype(ent);
  e.perm = archive_entry_perm(ent) & 07777;
  la_int64_t uid = archive_entry_uid(ent), gid = archive_entry_gid(ent);
  if (uid < 0 || gid < 0 || uid > 0xfffffffe || gid > 0xfffffffe)
    return "entry " + shown(e.path) + " has an invalid owner";
  e.uid = static_cast<std::uint32_t>(uid);
  e.gid = static_cast<std::uint32_t>(gid);
  if (const char* link =
          archive_entry_hardlink_utf8(ent) ? archive_entry_hardlink_utf8(ent) : archive_entry_hardlink(ent)) {
    std::vector<std::string> target;
    if (auto bad = split_path(link, target)) return "hard link " + shown(e.path) + ": " + *bad;
    if (target.empty()) return "hard link " + shown(e.path) + " points at the root";
    e.hardlink = std::move(target);
  }
  if (e.type == AE_IFLNK) {
    const char* target = archive_entry_symlink_utf8(ent) ? archive_entry_symlink_utf8(ent) : archive_entry_symlink(ent);
    if (target == nullptr || *target == '\0' || std::strlen(target) > 4095)
      return "symlink " + shown(e.path) + " has no usable target";
    e.symlink = target;
  }
  e.size = archive_entry_size_is_set(ent) ? archive_entry_size(ent) : 0;
  if (e.size < 0) return "entry " + shown(e.path) + " has a negative size";
  e.times[1] = {archive_entry_mtime(ent), archive_entry_mtime_is_set(ent) ? archive_entry_mtime_nsec(ent) : 0};
  if (e.times[1].tv_nsec < 0 || e.times[1].tv_nsec > 999999999) e.times[1].tv_nsec = 0;
  e.times[0] = e.times[1];
  int count = archive_entry_xattr_reset(ent);
  if (count > 64) return "entry " + shown(e.path) + " has more than 64 extended attributes";
  const char* xname = nullptr;
  const void* value = nullptr;
  std::size_t size = 0;
  while (archive_entry_xattr_next(ent, &xname, &value, &size) == ARCHIVE_OK) {
    if (xname == nullptr || !kept_xattr(xname)) continue;
    if (size > 65536 || std::strlen(xname) > 255)
      return "entry " + shown(e.path) + " has an extended attribute over the size limit";
    e.xattrs.emplace_back(xname, std::string(static_cast<const char*>(value), size));
  }
  return std::nullopt;
}
}  // namespace

// Opens the directory holding the last component of `parts`, one component at
// a time, never following a symlink. With `create`, missing directories are
// made (0755, owned by root) as a runtime would.
std::optional<std::string> LayerUnpacker::open_parent(const std::vector<std::string>& parts, bool create,
                                                      UniqueFd& out) {
  UniqueFd cur(::fcntl(root_.get(), F_DUPFD_CLOEXEC, 0));
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    const char* comp = parts[i].c_str();
    int fd = ::openat(cur.get(), comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
      std::string made = join(parts, i + 1);
      if (::mkdirat(cur.get(), comp, 0755) == 0) {
        laid_this_layer_.insert(made);
        if (::fchownat(cur.get(), comp, 0, 0, AT_SYMLINK_NOFOLLOW) != 0) owner_fixups_.push_back({"/" + made, 0, 0});
      }
      fd = ::openat(cur.get(), comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
      int err = errno;
      std::string where = join(parts, parts.size());
      struct stat st {};
      if (::fstatat(cur.get(), comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        return "path " + shown(where) + " goes through the symlink " + shown(join(parts, i + 1));
      if (err == ENOENT && !create) return std::string(kNoSuchParent);
      if (err == ENOTDIR) return "path " + shown(where) + ": " + shown(join(parts, i + 1)) + " is not a directory";
      return "path " + shown(where) + ": " + errno_text(err);
    }
    cur.reset(fd);
  }
  out = std::move(cur);
  return std::nullopt;
}

std::optional<std::string> LayerUnpacker::apply_entry(struct archive* a, const Entry& e) {
  if (e.parts.empty()) return std::nullopt;  // "./": the root keeps its own metadata
  const std::string& name = e.parts.back();
  UniqueFd parent;
  if (name.rfind(".wh.", 0) == 0) {
    if (name == ".wh." || name == ".wh.." || name == ".wh...") return "whiteout " + shown(e.path) + " names nothing";
    auto missing = open_parent(e.parts, false, parent);
    if (missing && *missing == kNoSuchParent) return std::nullopt;  // nothing there to hide
    if (missing) return missing;
    whiteout(e, parent.get());
    return std::nullopt;
  }
  if (auto bad = open_parent(e.parts, true, parent)) return bad;
  return make_node(a, e, parent.get());
}

void LayerUnpacker::whiteout(const Entry& e, int parent) {
  const std::string& name = e.parts.back();
  std::string dir = join(e.parts, e.parts.size() - 1);
  if (name == ".wh..wh..opq") {
    remove_lower(parent, dir);
    return;
  }
  if (name.rfind(".wh..wh.", 0) == 0) return;  // aufs bookkeeping, not a whiteout
  std::string target = name.substr(4);
  std::string target_path = dir.empty() ? target : dir + "/" + target;
  if (laid_this_layer_.count(target_path)) return;  // whiteouts hide lower layers only
  remove_at(parent, target);
}

// Opaque directory: remove what earlier layers put under `dirfd`, keep what
// this layer laid (descending into the directories it kept).
void LayerUnpacker::remove_lower(int dirfd, const std::string& dir_path) {
  UniqueFd own(::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  DIR* d = own ? ::fdopendir(own.release()) : nullptr;
  if (d == nullptr) return;
  std::vector<std::string> children;
  while (struct dirent* de = ::readdir(d))
    if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0) children.emplace_back(de->d_name);
  for (const auto& c : children) {
    std::string path = dir_path.empty() ? c : dir_path + "/" + c;
    if (!laid_this_layer_.count(path)) {
      remove_at(::dirfd(d), c);
      continue;
    }
    UniqueFd sub(::openat(::dirfd(d), c.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub) remove_lower(sub.get(), path);
  }
  ::closedir(d);
}

std::optional<std::string> LayerUnpacker::make_node(struct archive* a, const Entry& e, int parent) {
  const char* name = e.parts.back().c_str();
  struct stat st {};
  bool exists = ::fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
  laid_this_layer_.insert(e.path);
  if (e.hardlink) {
    if (exists) remove_at(parent, name);
    return hard_link(e, parent);
  }
  if (e.type == AE_IFDIR) {
    if (exists && !S_ISDIR(st.st_mode)) remove_at(parent, name);
    if ((!exists || !S_ISDIR(st.st_mode)) && ::mkdirat(parent, name, 0700) != 0)
      return "directory " + shown(e.path) + ": " + errno_text(errno);
    set_metadata(e, parent);
    dir_times_.emplace_back(e.parts, e.times[1]);
    return std::nullopt;
  }
  if (e.type == AE_IFCHR || e.type == AE_IFBLK) return "device node " + shown(e.path) + " is not allowed in an image";
  if (e.type != AE_IFREG && e.type != AE_IFLNK && e.type != AE_IFIFO)
    return "entry " + shown(e.path) + " has an unsupported type (only files, directories, links and FIFOs)";
  if (exists) remove_at(parent, name);
  if (e.type == AE_IFLNK) {
    if (::symlinkat(e.symlink.c_str(), parent, name) != 0) return "symlink " + shown(e.path) + ": " + errno_text(errno);
  } else if (e.type == AE_IFIFO) {
    if (::mkfifoat(parent, name, 0600) != 0) return "FIFO " + shown(e.path) + ": " + errno_text(errno);
  } else {
    UniqueFd fd(::openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return "file " + shown(e.path) + ": " + errno_text(errno);
    if (auto bad = write_data(a, fd.get(), e)) return bad;
  }
  set_metadata(e, parent);
  return std::nullopt;
}

std::optional<std::string> LayerUnpacker::write_data(struct archive* a, int fd, const Entry& e) {
  const void* buf = nullptr;
  std::size_t len = 0;
  la_int64_t offset = 0;
  for (;;) {
    int r = archive_read_data_block(a, &buf, &len, &offset);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      const char* why = archive_error_string(a);
      return "file " + shown(e.path) + ": " + (why ? why : "unreadable data");
    }
    if (offset < 0 || static_cast<std::uint64_t>(offset) + len > static_cast<std::uint64_t>(e.size))
      return "file " + shown(e.path) + " has data beyond its size";
    const char* p = static_cast<const char*>(buf);
    while (len > 0) {
      ssize_t n = ::pwrite(fd, p, len, offset);
      if (n <= 0) return "writing " + shown(e.path) + ": " + errno_text(n < 0 ? errno : EIO);
      p += n;
      offset += n;
      len -= static_cast<std::size_t>(n);
    }
  }
  if (::ftruncate(fd, e.size) != 0) return "writing " + shown(e.path) + ": " + errno_text(errno);
  return std::nullopt;
}

std::optional<std::string> LayerUnpacker::hard_link(const Entry& e, int parent) {
  const std::vector<std::string>& target = *e.hardlink;
  std::string target_path = join(target, target.size());
  UniqueFd target_dir;
  auto bad = open_parent(target, false, target_dir);
  if (bad && *bad == kNoSuchParent)
    return "hard link " + shown(e.path) + " points at " + shown(target_path) + ", which does not exist";
  if (bad) return "hard link " + shown(e.path) + ": " + *bad;
  struct stat st {};
  if (::fstatat(target_dir.get(), target.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return "hard link " + shown(e.path) + " points at " + shown(target_path) + ", which does not exist";
  if (S_ISDIR(st.st_mode)) return "hard link " + shown(e.path) + " points at a directory";
  if (::linkat(target_dir.get(), target.back().c_str(), parent, e.parts.back().c_str(), 0) != 0)
    return "hard link " + shown(e.path) + ": " + errno_text(errno);
  return std::nullopt;
}

void LayerUnpacker::set_metadata(const Entry& e, int parent) {
  const char* name = e.parts.back().c_str();
  bool symlink = e.type == AE_IFLNK;
  if (::fchownat(parent, name, e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0)
    owner_fixups_.push_back({"/" + e.path, e.uid, e.gid});
  // After chown, which clears setuid bits. chmod on a symlink would follow it.
  if (!symlink) ::fchmodat(parent, name, e.perm, 0);
  if (!e.xattrs.empty()) {
    std::string via = "/proc/self/fd/" + std::to_string(parent) + "/" + e.parts.back();
    for (const auto& [xname, value] : e.xattrs)
      if (::lsetxattr(via.c_str(), xname.c_str(), value.data(), value.size(), 0) != 0)
        xattr_fixups_.push_back({"/" + e.path, xname, value});
  }
  if (e.type != AE_IFDIR) ::utimensat(parent, name, e.times, AT_SYMLINK_NOFOLLOW);
}

}  // namespace gondolin
