// `gondolin build [SPEC.json]`: build a guest image from Debian packages.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "cli/commands.h"
#include "cli/vm_flags.h"
#include "gondolin/error.h"
#include "gondolin/image.h"
#include "gondolin/vm.h"
#include "util/logging.h"

namespace gondolin::cli {
namespace {

struct BuildFlags {
  std::string spec;
  std::string work_dir;
  std::string tag;
  std::string output;
  bool force = false;
  bool quiet = false;
  bool no_template = false;
};

// Prints one line per step; on a terminal the running step shows a ticking
// clock so a minute-long mmdebstrap does not look hung.
class ProgressDisplay {
 public:
  ProgressDisplay() : tty_(::isatty(STDERR_FILENO)) {
    if (tty_) ticker_ = std::thread([this] { tick(); });
  }
  ~ProgressDisplay() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    if (ticker_.joinable()) ticker_.join();
  }

  void update(const BuildProgress& p) {
    std::lock_guard lock(mutex_);
    if (!p.done) {
      current_ = p;
      started_ = std::chrono::steady_clock::now();
      running_ = true;
      if (!tty_)
        std::fprintf(stderr, "[%d/%d] %s ...\n", p.step, p.total, p.title.c_str());
      else
        draw(0);
      return;
    }
    running_ = false;
    if (tty_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "[%d/%d] %s: %s (%.1f s)\n", p.step, p.total, p.title.c_str(), p.cached ? "cached" : "done",
                 p.seconds);
  }

 private:
  void draw(double seconds) {
    std::fprintf(stderr, "\r\033[K[%d/%d] %s ... %.0f s", current_.step, current_.total, current_.title.c_str(),
                 seconds);
    std::fflush(stderr);
  }
  void tick() {
    std::unique_lock lock(mutex_);
    while (!done_) {
      cv_.wait_for(lock, std::chrono::seconds(1));
      if (running_ && !done_) draw(std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
    }
  }

  bool tty_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  bool running_ = false;
  BuildProgress current_;
  std::chrono::steady_clock::time_point started_;
  std::thread ticker_;
};

// --output must be new or an empty directory; checked before the build starts.
void refuse_used_output(const std::filesystem::path& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec)))
    throw Error(ErrorKind::Usage, "--output " + out.string() + " exists and is not an empty directory");
}

// The built image's files, also as a plain directory (for --image DIR, or to
// copy elsewhere): the read-only files hard-linked where possible, the
// manifest copied so editing it never touches the store's.
void write_output_dir(const Image& img, const std::filesystem::path& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(out);
  for (const std::string& name : {std::string("manifest.json"), img.manifest.kernel.file, img.manifest.initramfs.file,
                                  img.manifest.rootfs.file}) {
    ec.clear();
    if (name != "manifest.json") fs::create_hard_link(img.dir / name, out / name, ec);
    if (ec || name == "manifest.json") fs::copy_file(img.dir / name, out / name);
  }
}

// The boot template a plain `gondolin exec --image IMG` resumes (the
// default flags' machine shape), made now so that the first start is as
// fast as the next. Progress and outcome go to stderr like the build's.
void prepare_default_template(const Image& img, bool quiet) {
  VmOptions o = VmFlags().to_options();
  o.image = img.manifest.id;
  auto started = std::chrono::steady_clock::now();
  if (!quiet) std::fprintf(stderr, "boot template for the default machine shape ...\n");
  // --quiet hides the template VM's warnings (an image's failing init_extra)
  // unless a level was asked for: every start of the image repeats them.
  const spdlog::level::level_enum level = log().level();
  if (quiet && level == spdlog::level::warn) log().set_level(spdlog::level::err);
  struct RestoreLevel {
    spdlog::level::level_enum level;
    ~RestoreLevel() { log().set_level(level); }
  } restore{level};
  std::string why;
  try {
    why = Vm::prepare_boot_template(o);
  } catch (const Error& e) {
    // The image is built; its first start boots cold and tries again.
    std::fprintf(stderr, "gondolin: warning: no boot template: %s\n", e.what());
    return;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (quiet) return;
  if (!why.empty())
    std::fprintf(stderr, "boot template: none (%s); starts boot cold\n", why.c_str());
  else
    std::fprintf(stderr, "boot template: ready (%.1f s)\n", seconds);
}

}  // namespace

void add_build_command(CLI::App& app, Outcome& outcome) {
  auto flags = std::make_shared<BuildFlags>();
  CLI::App* cmd =
      app.add_subcommand("build", "Build a guest image from a JSON spec (default: images/debian-base.json, built in)");
  cmd->add_option("spec", flags->spec, "Image spec (JSON)");
  cmd->add_option("--work-dir", flags->work_dir, "Cache for downloads and root filesystems (default: <cache>/build)");
  cmd->add_flag("--force", flags->force, "Rebuild even if an identical image exists");
  cmd->add_option("--tag", flags->tag, "Name the image NAME:TAG instead of the spec's name and tag");
  cmd->add_option("--output", flags->output,
                  "Also write the image's files to DIR (new or empty), usable as --image DIR");
  cmd->add_flag("-q,--quiet", flags->quiet, "No progress lines; print only the result (or the error)");
  cmd->add_flag("--no-template", flags->no_template,
                "Do not prepare the boot template (the first `exec` with the image then makes it)");
  cmd->callback([flags, &outcome] {
    std::optional<ProgressDisplay> display;
    if (!flags->quiet) display.emplace();
    BuildOptions opts;
    opts.spec_path = flags->spec;
    opts.work_dir = flags->work_dir;
    opts.force = flags->force;
    opts.name_tag = flags->tag;
    if (display) opts.progress = [&display](const BuildProgress& p) { display->update(p); };
    if (!flags->output.empty()) refuse_used_output(flags->output);
    Image img = build_image(opts);
    if (!flags->output.empty()) write_output_dir(img, flags->output);
    if (!flags->no_template) prepare_default_template(img, flags->quiet);
    std::printf("%s %s %s\n", img.manifest.id.c_str(), img.display_name().c_str(),
                flags->output.empty() ? img.dir.c_str() : std::filesystem::absolute(flags->output).c_str());
    outcome.exit_code = 0;
  });
}

}  // namespace gondolin::cli
