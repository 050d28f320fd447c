// FUSE requests from a hostile guest kernel into the server, over an
// in-memory provider and over a host directory (plain, read-only, with hidden
// paths). Input: one selector byte, then messages as [u16 length][bytes]; the
// harness negotiates INIT first and usually fixes up each header's length so
// the fuzzer spends its time on the request bodies. Selector bit 0x20 moves
// file data through outside buffers as the virtio-fs transport does.
//
// The host directory is a fresh tree under a private temp dir for every input;
// a sibling "outside" directory with a canary file must be exactly as it was
// afterwards (nothing may resolve or be created outside the exported root).
// RLIMIT_FSIZE keeps fallocate/truncate/write from filling the disk.
#include <linux/fuse.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <span>
#include <vector>

#include "vfs/fuse_server.h"

using namespace gondolin;
using namespace gondolin::vfs;
namespace fs = std::filesystem;

namespace {

fs::path g_base;                             // <tmp>/gondolin-fuzz-fuse-XXXXXX: root/ and outside/canary
std::vector<char> g_read_space(256 * 1024);  // READ data "in guest pages"

void check(bool ok) {
  if (!ok) __builtin_trap();
}

std::vector<std::uint8_t> init_request() {
  fuse_in_header h{};
  fuse_init_in in{};
  in.major = FUSE_KERNEL_VERSION;
  in.minor = 37;
  in.max_readahead = 1 << 20;
  in.flags = 0xffffffff;
  h.opcode = FUSE_INIT;
  h.unique = 1;
  h.len = sizeof h + sizeof in;
  std::vector<std::uint8_t> out(h.len);
  std::memcpy(out.data(), &h, sizeof h);
  std::memcpy(out.data() + sizeof h, &in, sizeof in);
  return out;
}

void reset_root() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(g_base / "root", ec)) fs::remove_all(e.path(), ec);
  // Make sure a guest-made chmod 000 cannot make the next reset fail.
  fs::permissions(g_base / "root", fs::perms::owner_all, ec);
  fs::create_directories(g_base / "root" / "dir", ec);
  std::ofstream(g_base / "root" / "dir" / "file") << "hello";
  std::ofstream(g_base / "root" / "secret.key") << "hidden";
  fs::create_symlink("../outside/canary", g_base / "root" / "escape", ec);
}

void check_outside_untouched() {
  std::vector<std::string> top, outside;
  for (const auto& e : fs::directory_iterator(g_base)) top.push_back(e.path().filename());
  for (const auto& e : fs::directory_iterator(g_base / "outside")) outside.push_back(e.path().filename());
  check(top.size() == 2 && outside.size() == 1 && outside[0] == "canary");
  std::ifstream in(g_base / "outside" / "canary");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  check(text == "canary");
  check((fs::status(g_base / "outside" / "canary").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
}

std::shared_ptr<Provider> provider_for(std::uint8_t selector) {
  switch (selector % 4) {
    case 0: return memory();
    case 1: return host_dir(g_base / "root");
    case 2: return read_only(host_dir(g_base / "root"));
    default: return hide(host_dir(g_base / "root"), {"*.key", "dir/hidden*"});
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  rlimit fsize{64 << 20, 64 << 20};
  ::setrlimit(RLIMIT_FSIZE, &fsize);
  std::string tmpl = (fs::temp_directory_path() / "gondolin-fuzz-fuse-XXXXXX").string();
  g_base = ::mkdtemp(tmpl.data());
  fs::create_directories(g_base / "root");
  fs::create_directories(g_base / "outside");
  std::ofstream(g_base / "outside" / "canary") << "canary";
  fs::permissions(g_base / "outside" / "canary", fs::perms::owner_read | fs::perms::owner_write);
  std::atexit([] {
    std::error_code ec;
    fs::remove_all(g_base, ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // libFuzzer installs its own SIGXFSZ handler after LLVMFuzzerInitialize;
  // writes past RLIMIT_FSIZE must fail with EFBIG instead, as for a guest.
  static const bool xfsz_ignored = ::signal(SIGXFSZ, SIG_IGN) != SIG_ERR;
  (void)xfsz_ignored;
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  const bool uses_host_dir = selector % 4 != 0;
  if (uses_host_dir) reset_root();
  {
    MountOptions options;
    FuseServer server(provider_for(selector), options, ServerLimits{64, 16});
    if ((selector & 0x80) == 0) {
      auto r = server.handle(init_request());
      check(r.fatal.empty() && r.reply.has_value());
    }
    std::size_t off = 1;
    int message = 0;
    while (off + 2 <= size) {
      std::size_t len = static_cast<std::size_t>(data[off]) | static_cast<std::size_t>(data[off + 1]) << 8;
      off += 2;
      len = std::min(len, size - off);
      std::vector<std::uint8_t> msg(data + off, data + off + len);
      off += len;
      // Mostly an honest length field; one in eight messages keeps its own.
      if (msg.size() >= sizeof(fuse_in_header) && (selector & 0x40) == 0 && (++message % 8) != 0) {
        const auto honest = static_cast<std::uint32_t>(msg.size());
        std::memcpy(msg.data() + offsetof(fuse_in_header, len), &honest, sizeof honest);
      }
      // With selector bit 0x20, as virtio-fs: a WRITE's data stays outside
      // the message in uneven pieces, a READ's goes into pieces of ours.
      std::vector<std::span<const char>> write_from;
      std::vector<std::span<char>> read_into;
      std::vector<char> outside_data;
      constexpr std::size_t kHead = sizeof(fuse_in_header) + sizeof(fuse_write_in);
      std::uint32_t opcode = 0;
      if (msg.size() >= sizeof(fuse_in_header)) std::memcpy(&opcode, msg.data() + 4, sizeof opcode);
      if ((selector & 0x20) && opcode == FUSE_WRITE && msg.size() > kHead) {
        outside_data.assign(msg.begin() + kHead, msg.end());
        msg.resize(kHead);
        for (std::size_t at = 0, step = 1; at < outside_data.size(); at += step, step = step * 3 + 1)
          write_from.emplace_back(outside_data.data() + at, std::min(step, outside_data.size() - at));
      }
      if ((selector & 0x20) && opcode == FUSE_READ)
        for (std::size_t at = 0, step = 7; at < g_read_space.size(); at += step, step *= 4)
          read_into.emplace_back(g_read_space.data() + at, std::min(step, g_read_space.size() - at));
      auto r = server.handle(msg, {read_into, write_from});
      if (!r.fatal.empty()) break;
      if (r.reply) check(r.reply->size() >= sizeof(fuse_out_header));
      check(r.data_in_place <= g_read_space.size() && (r.data_in_place == 0 || read_into.size() > 0));
      if (r.data_in_place > 0) check(r.reply->size() == sizeof(fuse_out_header));
    }
  }
  if (uses_host_dir) check_outside_untouched();
  return 0;
}
