// A tar (pax) built in memory with libarchive: gondolin's own files added to
// every root (rootfs_tree.h), and the layers and archives tests make.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

struct archive;  // libarchive

namespace gondolin {

struct TarEntry {
  std::string path;
  mode_t type = S_IFREG;  // S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFCHR...
  mode_t perm = 0644;
  std::string data;  // a regular file's contents
  std::string link;  // symlink target, or with `hardlink` the linked path
  bool hardlink = false;
  std::uint32_t uid = 0, gid = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;

  static TarEntry file(std::string path, std::string data, mode_t perm = 0644) {
    TarEntry e;
    e.path = std::move(path);
    e.data = std::move(data);
    e.perm = perm;
    return e;
  }
  static TarEntry dir(std::string path, mode_t perm = 0755) {
    TarEntry e;
    e.path = std::move(path);
    e.type = S_IFDIR;
    e.perm = perm;
    return e;
  }
  static TarEntry symlink(std::string path, std::string target) {
    TarEntry e;
    e.path = std::move(path);
    e.type = S_IFLNK;
    e.perm = 0777;
    e.link = std::move(target);
    return e;
  }
  static TarEntry hard_link(std::string path, std::string target) {
    TarEntry e;
    e.path = std::move(path);
    e.link = std::move(target);
    e.hardlink = true;
    return e;
  }
};

class TarWriter {
 public:
  enum class Compression { None, Gzip, Zstd };
  explicit TarWriter(Compression c = Compression::None);
  ~TarWriter();
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  // Throws gondolin::Error (Internal) if libarchive refuses the entry.
  TarWriter& add(const TarEntry& e);
  std::string finish();  // the whole archive; the writer is done

 private:
  std::unique_ptr<::archive, int (*)(::archive*)> a_;
  std::unique_ptr<std::string> out_;  // stable address for libarchive's callback
};

}  // namespace gondolin
