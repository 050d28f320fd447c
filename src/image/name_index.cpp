#include "image/name_index.h"

#include <sstream>

#include "gondolin/error.h"
#include "util/files.h"
#include "util/hex.h"
#include "util/logging.h"
#include "util/sha256.h"

namespace gondolin::image {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kMaxPointerBytes = 4096;

fs::path names_dir(const fs::path& root) { return root / ".names"; }

fs::path pointer_file(const fs::path& root, const std::string& name_tag) {
  return names_dir(root) / sha256_hex(name_tag).substr(0, 32);
}

struct Pointer {
  std::string id;
  std::string name_tag;
};

std::optional<Pointer> read_pointer(const fs::path& file) {
  std::error_code ec;
  if (fs::file_size(file, ec) > kMaxPointerBytes || ec) return std::nullopt;
  auto text = read_file_if_exists(file);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  Pointer p;
  if (!std::getline(in, p.id) || !std::getline(in, p.name_tag) || p.id.empty() || !is_lower_hex(p.id))
    return std::nullopt;
  return p;
}

}  // namespace

std::optional<std::string> named_id(const fs::path& store_root, const std::string& name_tag) {
  auto p = read_pointer(pointer_file(store_root, name_tag));
  if (!p || p->name_tag != name_tag) return std::nullopt;
  return p->id;
}

void point_name(const fs::path& store_root, const std::string& name_tag, const std::string& id) {
  const fs::path file = pointer_file(store_root, name_tag);
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  try {
    write_file_atomic(file, id + "\n" + name_tag + "\n");
  } catch (const Error& e) {
    log().debug("{}: {} keeps meaning its newest build", e.what(), name_tag);
  }
}

void drop_name(const fs::path& store_root, const std::string& name_tag, const std::string& id) {
  if (named_id(store_root, name_tag) != id) return;
  std::error_code ec;
  fs::remove(pointer_file(store_root, name_tag), ec);
}

std::set<std::string> named_ids(const fs::path& store_root) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(names_dir(store_root), ec))
    if (e.is_regular_file(ec))
      if (auto p = read_pointer(e.path()); p && e.path().filename() == pointer_file(store_root, p->name_tag).filename())
        out.insert(p->id);
  return out;
}

}  // namespace gondolin::image
