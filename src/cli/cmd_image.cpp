// `gondolin image ls|inspect|verify|rm`: the local image store.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "gondolin/image.h"

namespace gondolin::cli {

void add_image_command(CLI::App& app, Outcome& outcome) {
  CLI::App* image = app.add_subcommand("image", "Manage local guest images");
  image->require_subcommand(1);

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
  auto* rm = image->add_subcommand("rm", "Delete an image from the store");
  rm->add_option("image", *rref, "name:tag or id")->required();
  rm->callback([rref, &outcome] {
    ImageStore::default_store().remove(*rref);
    outcome.exit_code = 0;
  });
}

}  // namespace gondolin::cli
