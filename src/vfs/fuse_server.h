// One mount's FUSE server: turns each request of the guest kernel into
// Provider calls and builds the reply. Pure request -> reply; the transport
// (fuse_channel) feeds it whole messages. Runs on the VM's io thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gondolin/vfs.h"
#include "vfs/fuse_wire.h"
#include "vfs/node_table.h"

namespace gondolin::vfs {

// Over virtio-fs with cache=auto, a file at least this big opened read-only
// bypasses the guest's page cache (FuseServer::file_open_flags).
inline constexpr std::uint64_t kDirectReadBytes = 64ull << 20;

struct ServerLimits {
  std::size_t max_nodes = 1u << 20;    // node ids the guest may hold at once
  std::size_t max_handles = 1u << 16;  // open files and directories
};

class FuseServer {
 public:
  FuseServer(std::shared_ptr<Provider> provider, MountOptions options, ServerLimits limits = {});

  struct Outcome {
    std::optional<std::vector<std::uint8_t>> reply;  // some requests (FORGET) get none
    std::string fatal;                               // non-empty: the stream is broken beyond answering; end the mount
    // Payload bytes of `reply` already in DataBuffers::read_into (the reply
    // holds the header only, its length counting them).
    std::size_t data_in_place = 0;
  };
  // Buffers of the transport's own that READ data goes into and WRITE data
  // comes from, instead of the messages (virtio-fs: the guest program's
  // pages, so no copy on the host).
  struct DataBuffers {
    std::span<const std::span<char>> read_into;         // a READ's reply data area
    std::span<const std::span<const char>> write_from;  // a WRITE's data, not in `message`
  };
  // Handles one whole request message (with `data`, a WRITE's message ends
  // before its data).
  Outcome handle(std::span<const std::uint8_t> message, const DataBuffers& data = {});

  bool initialized() const { return initialized_; }
  // Forgets the guest kernel's session (nodes, open handles, negotiation):
  // for a virtio-fs device the guest reset, which then sends INIT again.
  void end_session();
  std::uint32_t negotiated_minor() const { return minor_; }
  std::size_t open_handles() const { return handles_.size(); }
  const NodeTable& nodes() const { return nodes_; }

  // For snapshot/resume: the node table and open handles (by path and open
  // flags), and their inverse, which re-opens every handle through the
  // provider. A handle whose file is gone after the resume fails with ESTALE
  // on use. Returns false on malformed state.
  std::string export_state() const;
  bool import_state(std::string_view state);

 private:
  struct OpenFile {
    Handle provider_handle = 0;
    std::uint64_t nodeid = 0;
    int flags = 0;
    bool directory = false;
    bool live = true;  // false: could not be re-opened after a resume
  };
  using Bytes = std::vector<std::uint8_t>;

  Bytes dispatch(fuse::Request& req);
  Bytes init(fuse::Request& req);
  Bytes lookup(fuse::Request& req);
  Bytes getattr(fuse::Request& req);
  Bytes setattr(fuse::Request& req);
  Bytes readlink(fuse::Request& req);
  Bytes make_node(fuse::Request& req);  // MKNOD, MKDIR, SYMLINK
  Bytes link(fuse::Request& req);
  Bytes remove(fuse::Request& req);  // UNLINK, RMDIR
  Bytes rename(fuse::Request& req);  // RENAME, RENAME2
  Bytes open(fuse::Request& req);    // OPEN, OPENDIR
  Bytes create(fuse::Request& req);
  Bytes read(fuse::Request& req);
  Bytes write(fuse::Request& req);
  Bytes release(fuse::Request& req);  // RELEASE, RELEASEDIR
  Bytes sync(fuse::Request& req);     // FLUSH, FSYNC, FSYNCDIR
  Bytes readdir(fuse::Request& req);  // READDIR, READDIRPLUS
  Bytes statfs(fuse::Request& req);
  Bytes xattr(fuse::Request& req);  // SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR
  Bytes fallocate(fuse::Request& req);
  Bytes lseek(fuse::Request& req);
  void forget(fuse::Request& req);  // FORGET, BATCH_FORGET

  // The path of the request's node; nullopt (and `error` set) if it has none.
  std::optional<std::string> node_path(std::uint64_t nodeid, int& error) const;
  std::optional<std::string> child_path(std::uint64_t parent, std::string_view name, int& error) const;
  // A live handle of the given kind, or nullptr.
  OpenFile* find_handle(std::uint64_t fh, bool directory);
  // The error for a handle find_handle did not give: ESTALE for one whose
  // file was gone when a snapshot resumed, else EBADF.
  int handle_errno(std::uint64_t fh) const;
  Result<Attr> attr_of(std::uint64_t nodeid, std::optional<std::uint64_t> fh);
  // A reply naming a new (or known) node for parent/name; counts one lookup.
  Bytes entry_reply(std::uint64_t unique, std::uint64_t parent, std::string_view name, Result<Attr> attr);
  fuse_entry_out make_entry(std::uint64_t nodeid, const Attr& attr) const;
  fuse_attr_out make_attr_out(std::uint64_t nodeid, const Attr& attr) const;
  // How long the guest may cache these attributes: never for a file with
  // several names (links made on the host are one node per name, so a change
  // through one name must show through the others), attr_timeout otherwise.
  std::chrono::milliseconds attr_timeout_for(const Attr& attr) const;
  int open_flags_for_provider(int guest_flags) const;
  // FOPEN_* for a regular file the guest opened with `guest_flags`.
  std::uint32_t file_open_flags(int guest_flags, Handle handle);
  std::optional<std::uint64_t> add_handle(OpenFile file);

  std::shared_ptr<Provider> provider_;
  MountOptions options_;
  ServerLimits limits_;
  NodeTable nodes_;
  std::unordered_map<std::uint64_t, OpenFile> handles_;
  DataBuffers data_;  // of the request being handled
  std::size_t data_in_place_ = 0;
  std::uint64_t next_fh_ = 1;
  bool initialized_ = false;
  bool writeback_ = false;
  std::uint32_t minor_ = 0;
};

// Guest-visible sanity of an attribute set from a provider: a known file type.
bool plausible_attr(const Attr& a);

}  // namespace gondolin::vfs
