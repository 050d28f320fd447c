#include "image/tar_writer.h"

#include <archive.h>
#include <archive_entry.h>

#include "gondolin/error.h"

namespace gondolin {
namespace {

la_ssize_t append(struct archive*, void* client, const void* buf, std::size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

}  // namespace

TarWriter::TarWriter(Compression c)
    : a_(archive_write_new(), archive_write_free), out_(std::make_unique<std::string>()) {
  archive_write_set_format_pax_restricted(a_.get());
  if (c == Compression::Gzip) archive_write_add_filter_gzip(a_.get());
  if (c == Compression::Zstd) archive_write_add_filter_zstd(a_.get());
  archive_write_set_bytes_in_last_block(a_.get(), 1);
  archive_write_open(a_.get(), out_.get(), nullptr, append, nullptr);
}

TarWriter::~TarWriter() = default;

TarWriter& TarWriter::add(const TarEntry& t) {
  std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(), archive_entry_free);
  archive_entry_set_pathname(e.get(), t.path.c_str());
  archive_entry_set_filetype(e.get(), t.type);
  archive_entry_set_perm(e.get(), t.perm);
  archive_entry_set_uid(e.get(), t.uid);
  archive_entry_set_gid(e.get(), t.gid);
  archive_entry_set_mtime(e.get(), 1700000000, 0);
  bool has_data = t.type == S_IFREG && !t.hardlink;
  archive_entry_set_size(e.get(), has_data ? static_cast<la_int64_t>(t.data.size()) : 0);
  if (t.hardlink)
    archive_entry_set_hardlink(e.get(), t.link.c_str());
  else if (t.type == S_IFLNK)
    archive_entry_set_symlink(e.get(), t.link.c_str());
  for (const auto& [name, value] : t.xattrs)
    archive_entry_xattr_add_entry(e.get(), name.c_str(), value.data(), value.size());
  if (archive_write_header(a_.get(), e.get()) < ARCHIVE_WARN ||
      (has_data && !t.data.empty() &&
       archive_write_data(a_.get(), t.data.data(), t.data.size()) != static_cast<la_ssize_t>(t.data.size())))
    throw Error(ErrorKind::Internal, "writing a tar entry " + t.path + ": " + archive_error_string(a_.get()));
  return *this;
}

std::string TarWriter::finish() {
  archive_write_close(a_.get());
  return std::move(*out_);
}

}  // namespace gondolin
