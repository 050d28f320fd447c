// A saved mount from a hostile source: the snapshot's mount files or the
// device state QEMU hands the virtio-fs back-end on resume. Input: a selector
// byte, then the saved bytes. 'M': a memory mount's files (memory_tree),
// loaded under small limits; whatever loads must save and load again.
// Any other selector: a FUSE session (FuseServer::export_state), imported into a server
// over an in-memory tree (a directory, a file); whatever imports must export
// and import again, and serve a GETATTR and a READ on every node and handle
// it names without crashing.
#include <fcntl.h>
#include <linux/fuse.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gondolin/vfs.h"
#include "vfs/fuse_server.h"
#include "vfs/savable_contents.h"

using namespace gondolin;
using namespace gondolin::vfs;

namespace {

std::vector<std::uint8_t> request(std::uint32_t opcode, std::uint64_t nodeid, const void* body, std::size_t size) {
  fuse_in_header h{};
  h.len = static_cast<std::uint32_t>(sizeof h + size);
  h.opcode = opcode;
  h.unique = 2;
  h.nodeid = nodeid;
  std::vector<std::uint8_t> out(sizeof h + size);
  std::memcpy(out.data(), &h, sizeof h);
  if (size) std::memcpy(out.data() + sizeof h, body, size);
  return out;
}

std::shared_ptr<Provider> tree() {
  auto p = memory();
  (void)p->mkdir("d", 0755, {});
  if (auto c = p->create("d/f", O_WRONLY, 0100644, {})) {
    const std::string text = "contents";
    (void)p->write(c->handle, 0, text);
    p->release(c->handle);
  }
  return p;
}

}  // namespace

static void fuzz_memory_files(std::string_view saved) {
  MemoryOptions limits;
  limits.max_bytes = 1u << 20;
  limits.max_files = 256;
  auto m = memory(limits);
  auto& savable = dynamic_cast<SavableContents&>(*m);
  if (!savable.load_contents(saved).empty()) return;
  std::string again = savable.save_contents();
  auto twin = memory(limits);
  if (!dynamic_cast<SavableContents&>(*twin).load_contents(again).empty()) __builtin_trap();
  (void)m->getattr("");
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view saved(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] == 'M') {
    fuzz_memory_files(saved);
    return 0;
  }
  FuseServer server(tree(), MountOptions{}, ServerLimits{4096, 256});
  if (!server.import_state(saved)) return 0;
  std::string again = server.export_state();
  FuseServer twin(tree(), MountOptions{}, ServerLimits{4096, 256});
  if (!twin.import_state(again)) __builtin_trap();  // what we wrote we must read
  // Node ids and handles the state may name: ask about each.
  for (std::uint64_t id = 1; id < 64; ++id) {
    fuse_getattr_in g{};
    (void)server.handle(request(FUSE_GETATTR, id, &g, sizeof g));
    fuse_read_in in{};
    in.fh = id;
    in.size = 16;
    (void)server.handle(request(FUSE_READ, id, &in, sizeof in));
  }
  return 0;
}
