// vfs::hide: paths matching a glob do not exist for the guest. They are
// ENOENT, missing from listings, and cannot be created (EACCES); a rename
// that would carry a hidden file to a visible path is refused too.
#include <linux/fs.h>
#include <sys/stat.h>

#include <cerrno>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "gondolin/error.h"
#include "gondolin/vfs.h"
#include "vfs/path_glob.h"

namespace gondolin::vfs {
namespace {

// A rename of a directory whose subtree must be checked entry by entry gives
// up (EACCES) beyond this many entries rather than stall the VM.
constexpr std::size_t kMaxRenameWalk = 100000;

class Hide final : public Provider {
 public:
  Hide(std::shared_ptr<Provider> inner, std::vector<PathGlob> globs)
      : inner_(std::move(inner)), globs_(std::move(globs)) {}

  Result<Attr> getattr(const std::string& path) override {
    if (hidden(path)) return Errno{ENOENT};
    return inner_->getattr(path);
  }
  Result<Attr> setattr(const std::string& path, const SetAttr& c) override {
    if (hidden(path)) return Errno{ENOENT};
    return inner_->setattr(path, c);
  }
  Result<Attr> fsetattr(Handle h, const SetAttr& c) override { return inner_->fsetattr(h, c); }
  Result<std::string> readlink(const std::string& path) override {
    if (hidden(path)) return Errno{ENOENT};
    return inner_->readlink(path);
  }
  Result<Attr> mknod(const std::string& path, std::uint32_t mode, std::uint32_t rdev, const Caller& c) override {
    if (hidden(path)) return Errno{EACCES};
    return inner_->mknod(path, mode, rdev, c);
  }
  Result<Attr> mkdir(const std::string& path, std::uint32_t mode, const Caller& c) override {
    if (hidden(path)) return Errno{EACCES};
    return inner_->mkdir(path, mode, c);
  }
  Result<Attr> symlink(const std::string& target, const std::string& path, const Caller& c) override {
    if (hidden(path)) return Errno{EACCES};
    return inner_->symlink(target, path, c);
  }
  Result<Attr> link(const std::string& existing, const std::string& new_path) override {
    if (hidden(existing)) return Errno{ENOENT};
    if (hidden(new_path)) return Errno{EACCES};
    return inner_->link(existing, new_path);
  }
  Status unlink(const std::string& path) override {
    if (hidden(path)) return Errno{ENOENT};
    return inner_->unlink(path);
  }
  Status rmdir(const std::string& path) override {
    if (hidden(path)) return Errno{ENOENT};
    return inner_->rmdir(path);
  }
  Status rename(const std::string& from, const std::string& to, unsigned flags) override {
    if (hidden(from)) return Errno{ENOENT};
    if (hidden(to)) return (flags & RENAME_EXCHANGE) ? Status(Errno{ENOENT}) : Status(Errno{EACCES});
    if (!subtree_stays_hidden(from, to) || ((flags & RENAME_EXCHANGE) && !subtree_stays_hidden(to, from)))
      return Errno{EACCES};
    return inner_->rename(from, to, flags);
  }

  Result<Handle> open(const std::string& path, int flags) override {
    if (hidden(path)) return Errno{ENOENT};
    return inner_->open(path, flags);
  }
  Result<Created> create(const std::string& path, int flags, std::uint32_t mode, const Caller& c) override {
    if (hidden(path)) return Errno{EACCES};
    return inner_->create(path, flags, mode, c);
  }
  Result<std::size_t> read(Handle h, std::uint64_t offset, std::span<char> into) override {
    return inner_->read(h, offset, into);
  }
  Result<std::size_t> read_vectored(Handle h, std::uint64_t offset, std::span<const std::span<char>> into) override {
    return inner_->read_vectored(h, offset, into);
  }
  Result<std::size_t> write_vectored(Handle h, std::uint64_t offset,
                                     std::span<const std::span<const char>> data) override {
    return inner_->write_vectored(h, offset, data);
  }
  Result<std::size_t> write(Handle h, std::uint64_t offset, std::span<const char> data) override {
    return inner_->write(h, offset, data);
  }
  Status flush(Handle h) override { return inner_->flush(h); }
  Status fsync(Handle h, bool datasync) override { return inner_->fsync(h, datasync); }
  void release(Handle h) override { inner_->release(h); }
  Result<Attr> fgetattr(Handle h) override { return inner_->fgetattr(h); }
  Status fallocate(Handle h, int mode, std::uint64_t offset, std::uint64_t length) override {
    return inner_->fallocate(h, mode, offset, length);
  }
  Result<std::uint64_t> lseek(Handle h, std::uint64_t offset, int whence) override {
    return inner_->lseek(h, offset, whence);
  }

  Result<Handle> opendir(const std::string& path) override {
    if (hidden(path)) return Errno{ENOENT};
    auto h = inner_->opendir(path);
    if (h) dir_paths_[*h] = path;
    return h;
  }
  Status readdir(Handle h, std::uint64_t offset, const std::function<bool(const DirEntry&)>& emit) override {
    auto it = dir_paths_.find(h);
    if (it == dir_paths_.end()) return Errno{EBADF};
    const std::string& dir = it->second;
    return inner_->readdir(h, offset, [&](const DirEntry& e) {
      if (e.name != "." && e.name != ".." && hidden(dir.empty() ? e.name : dir + "/" + e.name)) return true;
      return emit(e);
    });
  }
  void releasedir(Handle h) override {
    dir_paths_.erase(h);
    inner_->releasedir(h);
  }
  Result<StatFs> statfs() override { return inner_->statfs(); }

  Result<std::string> getxattr(const std::string& path, const std::string& name) override {
    if (hidden(path)) return Errno{ENOENT};
    return inner_->getxattr(path, name);
  }
  Result<std::vector<std::string>> listxattr(const std::string& path) override {
    if (hidden(path)) return Errno{ENOENT};
    return inner_->listxattr(path);
  }
  Status setxattr(const std::string& path, const std::string& name, const std::string& value, int flags) override {
    if (hidden(path)) return Errno{ENOENT};
    return inner_->setxattr(path, name, value, flags);
  }
  Status removexattr(const std::string& path, const std::string& name) override {
    if (hidden(path)) return Errno{ENOENT};
    return inner_->removexattr(path, name);
  }

  bool read_only() const override { return inner_->read_only(); }
  std::string describe() const override {
    std::string inner = inner_->describe();
    if (inner.empty()) return {};
    std::vector<std::string> globs;
    for (const auto& g : globs_) globs.push_back(g.text());
    return nlohmann::json{{"kind", "hide"}, {"globs", globs}, {"inner", nlohmann::json::parse(inner)}}.dump();
  }

 private:
  bool hidden(const std::string& path) const {
    for (const auto& g : globs_)
      if (g.hides(path)) return true;
    return false;
  }

  // Would moving `from` to `to` make something below `from` visible? Where
  // every glob has made the same progress through both names, everything
  // below is judged alike and nothing needs walking.
  bool subtree_stays_hidden(const std::string& from, const std::string& to) {
    bool same = true;
    for (const auto& g : globs_) same = same && g.progress(from) == g.progress(to);
    if (same) return true;
    auto attr = inner_->getattr(from);
    if (!attr || !S_ISDIR(attr->mode)) return true;
    std::size_t budget = kMaxRenameWalk;
    return walk_stays_hidden(from, to, budget);
  }

  bool walk_stays_hidden(const std::string& from, const std::string& to, std::size_t& budget) {
    auto h = inner_->opendir(from);
    if (!h) return false;
    std::vector<std::pair<std::string, std::uint32_t>> children;
    Status s = inner_->readdir(*h, 0, [&](const DirEntry& e) {
      if (e.name == "." || e.name == "..") return true;
      if (budget == 0) return false;
      --budget;
      children.emplace_back(e.name, e.type);
      return true;
    });
    inner_->releasedir(*h);
    if (!s || budget == 0) return false;
    for (const auto& [name, type] : children) {
      std::string a = from + "/" + name, b = to + "/" + name;
      if (hidden(a)) {
        if (!hidden(b)) return false;
        continue;  // hidden both before and after, and so is everything below it
      }
      bool is_dir = S_ISDIR(type);
      if (type == 0)
        if (auto attr = inner_->getattr(a)) is_dir = S_ISDIR(attr->mode);
      if (is_dir && !walk_stays_hidden(a, b, budget)) return false;
    }
    return true;
  }

  std::shared_ptr<Provider> inner_;
  std::vector<PathGlob> globs_;
  std::unordered_map<Handle, std::string> dir_paths_;
};

}  // namespace

std::shared_ptr<Provider> hide(std::shared_ptr<Provider> inner, std::vector<std::string> globs) {
  if (!inner) throw Error(ErrorKind::Usage, "vfs::hide needs a provider to wrap");
  std::vector<PathGlob> parsed;
  for (const auto& g : globs) parsed.emplace_back(g);
  return std::make_shared<Hide>(std::move(inner), std::move(parsed));
}

}  // namespace gondolin::vfs
