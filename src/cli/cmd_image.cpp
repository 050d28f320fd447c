// `gondolin image ls|inspect|verify|rm|prune`: the local image store.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "gondolin/error.h"
#include "gondolin/image.h"
#include "gondolin/session.h"

namespace gondolin::cli {
namespace {

// Image ids that a snapshot or a running session still needs, with one of
// the things that needs each: deleting them would make that unresumable.
std::map<std::string, std::string> images_in_use() {
  std::map<std::string, std::string> out;
  for (const auto& s : list_snapshots())
    if (!s.image_id.empty()) out.emplace(s.image_id, "snapshot " + s.id);
  for (const auto& s : Session::list())
    if (!s.image_id.empty()) out.emplace(s.image_id, "running session " + s.id);
  return out;
}

// Disk space deleting `dirs` gives back: root file systems are sparse, and
// builds share identical files as hard links, which free space only once
// every link is gone.
std::uintmax_t disk_bytes_freed(const std::vector<std::filesystem::path>& dirs) {
  struct Inode {
    std::uintmax_t links = 0, seen = 0, bytes = 0;
  };
  std::map<std::pair<dev_t, ino_t>, Inode> inodes;
  for (const auto& dir : dirs) {
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir, ec)) {
      struct stat st {};
      if (!e.is_regular_file(ec) || ::lstat(e.path().c_str(), &st) != 0) continue;
      Inode& i = inodes[{st.st_dev, st.st_ino}];
      i.links = st.st_nlink;
      i.bytes = static_cast<std::uintmax_t>(st.st_blocks) * 512;
      ++i.seen;
    }
  }
  std::uintmax_t total = 0;
  for (const auto& [key, i] : inodes)
    if (i.seen >= i.links) total += i.bytes;
  return total;
}

// `image tag`, `image export`, `image import`: images under other names and on other machines.
void add_transfer_commands(CLI::App* image, Outcome& outcome) {
  struct Args {
    std::string ref, target, source, tag;
  };
  auto args = std::make_shared<Args>();
  auto* tag = image->add_subcommand("tag", "Give an image another NAME:TAG (a new image sharing its files)");
  tag->add_option("image", args->ref, "name:tag, id or path")->required();
  tag->add_option("name_tag", args->target, "NAME[:TAG]")->required();
  tag->callback([args, &outcome] {
    Image img = ImageStore::default_store().tag(args->ref, args->target);
    std::printf("%s %s %s\n", img.manifest.id.c_str(), img.display_name().c_str(), img.dir.c_str());
    outcome.exit_code = 0;
  });
  auto* exp = image->add_subcommand("export", "Write an image to one FILE.tar.zst for another machine");
  exp->add_option("image", args->ref, "name:tag, id or path")->required();
  exp->add_option("file", args->target, "Archive to write (must not exist)")->required();
  exp->callback([args, &outcome] {
    ImageStore::default_store().export_to(args->ref, args->target);
    outcome.exit_code = 0;
  });
  auto* imp = image->add_subcommand("import", "Add an exported FILE.tar.zst (or an image directory), hashes checked");
  imp->add_option("source", args->source, "Archive or image directory")->required();
  imp->add_option("--tag", args->tag, "Install it as NAME[:TAG]");
  imp->callback([args, &outcome] {
    Image img = ImageStore::default_store().import_from(args->source, args->tag);
    std::printf("%s %s %s\n", img.manifest.id.c_str(), img.display_name().c_str(), img.dir.c_str());
    outcome.exit_code = 0;
  });
}

}  // namespace

void add_image_command(CLI::App& app, Outcome& outcome) {
  CLI::App* image = app.add_subcommand("image", "Manage local guest images");
  image->require_subcommand(1);
  add_transfer_commands(image, outcome);

  image->add_subcommand("ls", "List images")->callback([&outcome] {
    auto images = ImageStore::default_store().list();
    std::printf("%-18s %-24s %-22s %s\n", "ID", "NAME", "CREATED", "KERNEL");
    for (const auto& img : images)
      std::printf("%-18s %-24s %-22s %s\n", img.manifest.id.c_str(), img.display_name().c_str(),
                  img.manifest.created.c_str(), img.manifest.kernel_release.c_str());
    outcome.exit_code = 0;
  });

  auto ref = std::make_shared<std::string>();
  auto* inspect = image->add_subcommand("inspect", "Print an image's manifest");
  inspect->add_option("image", *ref, "name:tag, id or path")->required();
  inspect->callback([ref, &outcome] {
    Image img = ImageStore::default_store().resolve(*ref);
    std::printf("%s", img.manifest.to_json().c_str());
    outcome.exit_code = 0;
  });

  auto vref = std::make_shared<std::string>();
  auto* verify = image->add_subcommand("verify", "Check an image's files against its manifest hashes");
  verify->add_option("image", *vref, "name:tag, id or path");
  verify->callback([vref, &outcome] {
    Image img = ImageStore::default_store().resolve(*vref);
    ImageStore::verify(img);
    std::printf("%s: ok\n", img.display_name().c_str());
    outcome.exit_code = 0;
  });

  auto rref = std::make_shared<std::string>();
  auto rforce = std::make_shared<bool>(false);
  auto* rm = image->add_subcommand("rm", "Delete an image from the store");
  rm->add_option("image", *rref, "name:tag or id")->required();
  rm->add_flag("--force", *rforce, "Delete it even if a snapshot or running session still needs it");
  rm->callback([rref, rforce, &outcome] {
    ImageStore store = ImageStore::default_store();
    Image img = store.resolve_for_removal(*rref);
    auto in_use = images_in_use();
    if (auto it = in_use.find(img.manifest.id); it != in_use.end() && !*rforce)
      throw Error(ErrorKind::Usage, "image " + img.display_name() + " (" + img.manifest.id + ") is still needed by " +
                                        it->second + "; remove that first, or pass --force");
    store.remove(img.manifest.id);
    outcome.exit_code = 0;
  });

  auto dry_run = std::make_shared<bool>(false);
  auto* prune = image->add_subcommand(
      "prune", "Delete older builds that no name:tag resolves to and no snapshot or running session needs");
  prune->add_flag("-n,--dry-run", *dry_run, "Only list what would be deleted");
  prune->callback([dry_run, &outcome] {
    ImageStore store = ImageStore::default_store();
    std::set<std::string> keep;
    for (const auto& [id, why] : images_in_use()) keep.insert(id);
    auto doomed = store.prunable(keep);
    std::vector<std::filesystem::path> dirs;
    for (const auto& img : doomed) dirs.push_back(img.dir);
    const std::uintmax_t freed = disk_bytes_freed(dirs);
    for (const auto& img : doomed) {
      if (!*dry_run) store.remove(img.manifest.id);
      std::printf("%s %s %s %s\n", *dry_run ? "would delete" : "deleted", img.manifest.id.c_str(),
                  img.display_name().c_str(), img.manifest.created.c_str());
    }
    std::printf("%s %zu image(s), %ju MiB\n", *dry_run ? "would free" : "freed", doomed.size(), freed >> 20);
    outcome.exit_code = 0;
  });
}

}  // namespace gondolin::cli
