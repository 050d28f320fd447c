// vfs::read_only: every change is EROFS, reads pass through.
#include <fcntl.h>

#include <cerrno>

#include <nlohmann/json.hpp>

#include "gondolin/error.h"
#include "gondolin/vfs.h"

namespace gondolin::vfs {
namespace {

class ReadOnly final : public Provider {
 public:
  explicit ReadOnly(std::shared_ptr<Provider> inner) : inner_(std::move(inner)) {}

  Result<Attr> getattr(const std::string& path) override { return inner_->getattr(path); }
  Result<Attr> setattr(const std::string&, const SetAttr&) override { return Errno{EROFS}; }
  Result<Attr> fsetattr(Handle, const SetAttr&) override { return Errno{EROFS}; }
  Result<std::string> readlink(const std::string& path) override { return inner_->readlink(path); }
  Result<Attr> mknod(const std::string&, std::uint32_t, std::uint32_t, const Caller&) override { return Errno{EROFS}; }
  Result<Attr> mkdir(const std::string&, std::uint32_t, const Caller&) override { return Errno{EROFS}; }
  Result<Attr> symlink(const std::string&, const std::string&, const Caller&) override { return Errno{EROFS}; }
  Result<Attr> link(const std::string&, const std::string&) override { return Errno{EROFS}; }
  Status unlink(const std::string&) override { return Errno{EROFS}; }
  Status rmdir(const std::string&) override { return Errno{EROFS}; }
  Status rename(const std::string&, const std::string&, unsigned) override { return Errno{EROFS}; }

  Result<Handle> open(const std::string& path, int flags) override {
    if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_APPEND))) return Errno{EROFS};
    return inner_->open(path, flags);
  }
  Result<Created> create(const std::string&, int, std::uint32_t, const Caller&) override { return Errno{EROFS}; }
  Result<std::size_t> read(Handle h, std::uint64_t offset, std::span<char> into) override {
    return inner_->read(h, offset, into);
  }
  Result<std::size_t> read_vectored(Handle h, std::uint64_t offset, std::span<const std::span<char>> into) override {
    return inner_->read_vectored(h, offset, into);
  }
  Result<std::size_t> write_vectored(Handle, std::uint64_t, std::span<const std::span<const char>>) override {
    return Errno{EROFS};
  }
  Result<std::size_t> write(Handle, std::uint64_t, std::span<const char>) override { return Errno{EROFS}; }
  Status flush(Handle h) override { return inner_->flush(h); }
  Status fsync(Handle, bool) override { return {}; }
  void release(Handle h) override { inner_->release(h); }
  Result<Attr> fgetattr(Handle h) override { return inner_->fgetattr(h); }
  Status fallocate(Handle, int, std::uint64_t, std::uint64_t) override { return Errno{EROFS}; }
  Result<std::uint64_t> lseek(Handle h, std::uint64_t offset, int whence) override {
    return inner_->lseek(h, offset, whence);
  }

  Result<Handle> opendir(const std::string& path) override { return inner_->opendir(path); }
  Status readdir(Handle h, std::uint64_t offset, const std::function<bool(const DirEntry&)>& emit) override {
    return inner_->readdir(h, offset, emit);
  }
  void releasedir(Handle h) override { inner_->releasedir(h); }
  Result<StatFs> statfs() override { return inner_->statfs(); }

  Result<std::string> getxattr(const std::string& path, const std::string& name) override {
    return inner_->getxattr(path, name);
  }
  Result<std::vector<std::string>> listxattr(const std::string& path) override { return inner_->listxattr(path); }
  Status setxattr(const std::string&, const std::string&, const std::string&, int) override { return Errno{EROFS}; }
  Status removexattr(const std::string&, const std::string&) override { return Errno{EROFS}; }

  bool read_only() const override { return true; }
  std::string describe() const override {
    std::string inner = inner_->describe();
    if (inner.empty()) return {};
    return nlohmann::json{{"kind", "read_only"}, {"inner", nlohmann::json::parse(inner)}}.dump();
  }

 private:
  std::shared_ptr<Provider> inner_;
};

}  // namespace

std::shared_ptr<Provider> read_only(std::shared_ptr<Provider> inner) {
  if (!inner) throw Error(ErrorKind::Usage, "vfs::read_only needs a provider to wrap");
  return std::make_shared<ReadOnly>(std::move(inner));
}

}  // namespace gondolin::vfs
