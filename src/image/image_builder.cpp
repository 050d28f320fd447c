// `gondolin build`: a guest image from Debian packages only.
//
// Steps: resolve and download the kernel package, unpack it, download
// busybox-static, make the root filesystem with mmdebstrap + mke2fs -d (no
// loop mounts), write the initramfs (agent as /init, busybox, the modules the
// boot needs), extract an uncompressed PVH kernel, hash everything, install.
// Slow steps are cached in the work directory, keyed by their inputs.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "gondolin/error.h"
#include "gondolin/image.h"
#include "image/build_spec.h"
#include "image/embedded_assets.h"
#include "image/initramfs_builder.h"
#include "image/kernel_image.h"
#include "image/oci_rootfs.h"
#include "image/rootfs_tree.h"
#include "proto/protocol_version.h"
#include "util/files.h"
#include "util/logging.h"
#include "util/paths.h"
#include "util/sha256.h"
#include "util/subprocess.h"
#include "util/unique_fd.h"
#include "util/utc_time.h"

namespace gondolin {
namespace fs = std::filesystem;
namespace {

// Bump when the builder's output for the same inputs changes.
constexpr int kBuilderVersion = 3;

class Builder {
 public:
  Builder(const BuildOptions& opts, BuildSpec spec, fs::path work)
      : opts_(opts), spec_(std::move(spec)), work_(std::move(work)), log_file_(work_ / "build.log") {}

  Image run(const ImageStore& store);

 private:
  template <typename F>
  auto step(const std::string& title, F&& fn) {
    ++step_;
    BuildProgress p{step_, kSteps, title, false, false, 0};
    if (opts_.progress) opts_.progress(p);
    auto start = std::chrono::steady_clock::now();
    cached_ = false;
    auto result = fn();
    p.done = true;
    p.cached = cached_;
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (opts_.progress) opts_.progress(p);
    return result;
  }

  void run_checked(const std::vector<std::string>& argv, const std::string& what, const fs::path& cwd = {}) {
    CommandResult r = run_command(argv, log_file_, 4096, cwd);
    if (!r.ok()) {
      std::string tail = r.output;
      auto last = tail.find_last_not_of("\n ");
      tail = last == std::string::npos ? "" : tail.substr(0, last + 1);
      auto nl = tail.rfind('\n');
      if (nl != std::string::npos) tail = tail.substr(nl + 1);
      throw Error(ErrorKind::Image, what + " failed (" + argv[0] + " " + describe_wait_status(r.wait_status) +
                                        "): " + tail + " [full log: " + log_file_.string() + "]");
    }
  }

  CommandRunner runner() {
    return [this](const std::vector<std::string>& argv, const std::string& what) { run_checked(argv, what); };
  }

  std::vector<std::string> apt_options() const {
    // As root, apt drops to the _apt user for downloads, which cannot write to
    // a root-owned work directory.
    if (::geteuid() == 0) return {"-o", "APT::Sandbox::User=root"};
    return {};
  }

  fs::path download_package(const std::string& package);
  std::string resolve_kernel_package();
  fs::path unpack_deb(const fs::path& deb);
  std::vector<std::string> apt_sources() const;
  fs::path build_rootfs();
  // The root filesystem, from Debian packages or the spec's OCI image (then
  // also the image config's defaults).
  std::pair<fs::path, std::optional<OciRootfs>> make_root();
  ImageManifest manifest_for(const fs::path& stage, const std::string& release, const std::string& kernel_format,
                             const std::optional<OciRootfs>& oci) const;
  void fill_manifest(ImageManifest& m, const std::optional<OciRootfs>& oci) const;
  std::pair<std::string, std::string> build_kernel(const fs::path& kernel_tree, const std::string& release);

  static constexpr int kSteps = 7;
  const BuildOptions& opts_;
  BuildSpec spec_;
  fs::path work_;
  fs::path log_file_;
  int step_ = 0;
  bool cached_ = false;
};

fs::path Builder::download_package(const std::string& package) {
  fs::path debs = work_ / "debs";
  fs::create_directories(debs);
  // `apt-get download` names files pkg_version_arch.deb; ask apt for the version
  // first so a cached download is reused only when it is still the candidate.
  CommandResult show = run_command({"apt-cache", "policy", package}, log_file_);
  std::string candidate;
  std::istringstream lines(show.output);
  for (std::string line; std::getline(lines, line);) {
    auto pos = line.find("Candidate:");
    if (pos != std::string::npos) candidate = line.substr(pos + 10);
  }
  candidate.erase(0, candidate.find_first_not_of(' '));
  if (candidate.empty() || candidate == "(none)")
    throw Error(ErrorKind::Image, "Debian package " + package +
                                      " has no installable candidate (run `apt-get update`, check the apt sources)");
  std::string epochless = candidate.substr(candidate.find(':') == std::string::npos ? 0 : candidate.find(':') + 1);
  for (const auto& e : fs::directory_iterator(debs)) {
    std::string f = e.path().filename().string();
    if (f.starts_with(package + "_" + epochless + "_") || f.starts_with(package + "_" + candidate + "_")) {
      cached_ = true;
      return e.path();
    }
    // apt escapes ':' of the epoch as %3a
    std::string escaped = candidate;
    if (auto c = escaped.find(':'); c != std::string::npos) escaped.replace(c, 1, "%3a");
    if (f.starts_with(package + "_" + escaped + "_")) {
      cached_ = true;
      return e.path();
    }
  }
  std::vector<std::string> argv{"apt-get"};
  for (auto& o : apt_options()) argv.push_back(o);
  argv.insert(argv.end(), {"download", package + "=" + candidate});
  run_checked(argv, "downloading " + package, debs);
  for (const auto& e : fs::directory_iterator(debs))
    if (e.path().filename().string().starts_with(package + "_")) return e.path();
  throw Error(ErrorKind::Image, "apt-get download " + package + " produced no .deb in " + debs.string());
}

std::string Builder::resolve_kernel_package() {
  // A metapackage (linux-image-cloud-amd64) depends on the real one.
  CommandResult r = run_command({"apt-cache", "depends", "--important", spec_.kernel_package}, log_file_);
  if (!r.ok()) throw Error(ErrorKind::Image, "unknown kernel package " + spec_.kernel_package);
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    auto pos = line.find("Depends: linux-image-");
    if (pos != std::string::npos) {
      std::string dep = line.substr(pos + 9);
      dep = dep.substr(0, dep.find_first_of(" \t"));
      if (dep.find('<') == std::string::npos) return dep;
    }
  }
  return spec_.kernel_package;
}

fs::path Builder::unpack_deb(const fs::path& deb) {
  fs::path dir = work_ / "unpacked" / deb.stem();
  if (fs::exists(dir / ".complete")) {
    cached_ = true;
    return dir;
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  run_checked({"dpkg-deb", "-x", deb.string(), dir.string()}, "unpacking " + deb.filename().string());
  write_file_atomic(dir / ".complete", "");
  return dir;
}

std::vector<std::string> Builder::apt_sources() const {
  if (!spec_.apt_sources.empty()) return spec_.apt_sources;
  std::vector<std::string> out;
  std::error_code ec;
  if (fs::file_size("/etc/apt/sources.list", ec) > 0 && !ec) {
    std::string text = read_file("/etc/apt/sources.list");
    if (text.find("deb ") != std::string::npos) out.push_back("/etc/apt/sources.list");
  }
  std::vector<std::string> extra;
  for (const auto& e : fs::directory_iterator("/etc/apt/sources.list.d", ec)) {
    auto ext = e.path().extension();
    if (ext == ".sources" || ext == ".list") extra.push_back(e.path().string());
  }
  std::sort(extra.begin(), extra.end());
  out.insert(out.end(), extra.begin(), extra.end());
  if (out.empty()) throw Error(ErrorKind::Image, "no apt sources on this host (/etc/apt/sources.list[.d])");
  return out;
}

// What a copy source holds (names, types, modes, contents, link targets), so
// an edited file makes a new root file system rather than a stale cached one.
std::string hash_tree(const fs::path& root) {
  std::vector<std::string> lines;
  auto describe = [&](const fs::path& p) {
    fs::file_status st = fs::symlink_status(p);
    std::string line = fs::relative(p, root.parent_path()).string() + "|" +
                       std::to_string(static_cast<int>(st.type())) + "|" +
                       std::to_string(static_cast<unsigned>(st.permissions()));
    if (st.type() == fs::file_type::regular) line += "|" + sha256_file_hex(p);
    if (st.type() == fs::file_type::symlink) line += "|" + fs::read_symlink(p).string();
    lines.push_back(std::move(line));
  };
  describe(root);
  if (fs::is_directory(fs::symlink_status(root)))
    for (const auto& e : fs::recursive_directory_iterator(root)) describe(e.path());
  std::sort(lines.begin(), lines.end());
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  return sha256_hex(all);
}

// mmdebstrap hooks for post_build, in order: the copies, then the commands
// (so a command can use a copied file). Hooks run as shell strings with the
// new root as $1; the commands run inside it with chroot while the package
// sources and lists are still there. A command that fails leaves its number,
// exit status and stderr in `failure` (its stderr also goes to the log), so
// the build's error can name it: mmdebstrap itself only says a hook failed.
std::vector<std::string> post_build_hooks(const BuildSpec& spec, const fs::path& failure) {
  std::vector<std::string> hooks;
  for (const auto& c : spec.copies) {
    std::string dest = "\"$1\"" + shell_quote(c.dest);
    std::string parent = "\"$1\"" + shell_quote(fs::path(c.dest).parent_path().string());
    hooks.push_back("--customize-hook=mkdir -p " + parent +
                    " && cp -R --no-preserve=ownership --preserve=mode,timestamps,links " +
                    shell_quote(c.src.string()) + " " + dest);
  }
  const std::string err = shell_quote(failure.string() + ".stderr");
  for (std::size_t i = 0; i < spec.commands.size(); ++i)
    hooks.push_back("--customize-hook=s=0; chroot \"$1\" /bin/sh -ec " + shell_quote(spec.commands[i]) + " 2>" + err +
                    " || s=$?; cat " + err + " >&2; if [ $s != 0 ]; then { echo " + std::to_string(i + 1) +
                    " $s; cat " + err + "; } >" + shell_quote(failure.string()) + "; exit $s; fi");
  return hooks;
}

// The one line for a post_build command that failed, from what its hook left
// in `failure`; "" if no command failed (mmdebstrap failed elsewhere).
std::string post_build_failure(const BuildSpec& spec, const fs::path& failure) {
  std::ifstream in(failure);
  std::size_t number = 0;
  int status = 0;
  if (!(in >> number >> status) || number == 0 || number > spec.commands.size()) return "";
  std::string line, last;
  while (std::getline(in, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  std::string cmd = spec.commands[number - 1];
  if (cmd.size() > 80) cmd = cmd.substr(0, 77) + "...";
  std::string why = "post_build command " + std::to_string(number) + " (" + cmd + ") failed with exit status " +
                    std::to_string(status);
  if (!last.empty()) why += ": " + last.substr(0, 200);
  return why;
}

fs::path Builder::build_rootfs() {
  std::vector<std::string> packages = spec_.packages;
  std::sort(packages.begin(), packages.end());
  std::ostringstream key_input;
  key_input << "v" << kBuilderVersion << "|" << spec_.suite << "|" << spec_.variant << "|" << spec_.rootfs_free_mib;
  for (const auto& p : packages) key_input << "|" << p;
  for (const auto& c : spec_.copies) key_input << "|copy " << c.dest << "=" << hash_tree(c.src);
  for (const auto& cmd : spec_.commands) key_input << "|run " << cmd;
  if (!spec_.init_extra.empty()) key_input << "|init_extra " << spec_.init_extra;
  auto sources = apt_sources();
  for (const auto& s : sources) key_input << "|" << s << "=" << sha256_hex(read_file(s));
  std::string key = sha256_hex(key_input.str()).substr(0, 16);
  fs::path image = work_ / ("rootfs-" + key + ".ext4");
  if (fs::exists(image)) {
    cached_ = true;
    return image;
  }

  fs::path tree = work_ / ("rootfs-" + key + ".tree");
  fs::remove_all(tree);
  std::string include;
  for (const auto& p : packages) include += (include.empty() ? "" : ",") + p;
  std::vector<std::string> argv{"mmdebstrap", "--quiet", "--variant=" + spec_.variant, "--format=directory"};
  if (!include.empty()) argv.push_back("--include=" + include);
  argv.push_back("--dpkgopt=path-exclude=/usr/share/doc/*");
  argv.push_back("--dpkgopt=path-exclude=/usr/share/man/*");
  argv.push_back("--dpkgopt=path-exclude=/usr/share/locale/*");
  argv.push_back("--dpkgopt=path-include=/usr/share/doc/*/copyright");
  const fs::path failure = work_ / "post_build.failed";
  fs::remove(failure);
  for (auto& hook : post_build_hooks(spec_, failure)) argv.push_back(std::move(hook));
  argv.push_back(spec_.suite);
  argv.push_back(tree.string());
  for (const auto& s : sources) argv.push_back(s);
  try {
    run_checked(argv, spec_.commands.empty() && spec_.copies.empty()
                          ? "building the root filesystem with mmdebstrap"
                          : "building the root filesystem with mmdebstrap (and the spec's post_build)");
  } catch (const Error&) {
    std::string why = post_build_failure(spec_, failure);
    std::error_code ec;
    fs::remove_all(tree, ec);
    if (why.empty()) throw;
    throw Error(ErrorKind::Image, why + " [full log: " + log_file_.string() + "]");
  }

  // No package lists that would be stale in a VM; then gondolin's own files,
  // the same layer an OCI root gets (rootfs_tree.h).
  std::error_code ec;
  for (const char* dir : {"var/lib/apt/lists", "var/cache/apt"}) {
    for (const auto& e : fs::directory_iterator(tree / dir, ec))
      if (e.is_regular_file()) fs::remove(e.path(), ec);
  }
  LayerUnpacker own_files(tree);
  std::string layer = gondolin_root_layer(spec_.init_extra);
  if (auto bad = own_files.apply_memory(layer.data(), layer.size(), "adding gondolin's files to the root"))
    throw Error(ErrorKind::Image, *bad);

  write_ext4_image(tree, image, spec_.rootfs_free_mib, &own_files, runner());
  fs::remove_all(tree, ec);
  return image;
}

std::pair<std::string, std::string> Builder::build_kernel(const fs::path& kernel_tree, const std::string& release) {
  std::string bz = read_file(kernel_tree / "boot" / ("vmlinuz-" + release));
  auto payload = find_bzimage_payload(bz);
  std::optional<std::string> elf;
  if (payload && payload->compression == "lz4") {
    elf = lz4_legacy_decompress(payload->data, 512u << 20);
  } else if (payload &&
             (payload->compression == "gzip" || payload->compression == "xz" || payload->compression == "zstd")) {
    fs::path in = work_ / "kernel.payload", out = work_ / "kernel.elf";
    // Linux appends the uncompressed size (u32) to xz and zstd payloads,
    // which their tools would take for a second, broken stream.
    std::string_view data = payload->data;
    if (payload->compression != "gzip" && data.size() > 4) data.remove_suffix(4);
    write_file_atomic(in, data);
    UniqueFd in_fd(::open(in.c_str(), O_RDONLY | O_CLOEXEC));
    UniqueFd out_fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    UniqueFd log_fd(::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    SpawnSpec spec;
    spec.argv = {payload->compression, "-dc"};
    spec.stdin_fd = in_fd.get();
    spec.stdout_fd = out_fd.get();
    spec.stderr_fd = log_fd.get();  // the build log, not the user's terminal
    try {
      if (WIFEXITED(wait_process(spawn_process(spec)))) elf = read_file(out);
    } catch (const Error& e) {
      log().info("cannot decompress the kernel ({}); booting the bzImage", e.what());
    }
    std::error_code ec;
    fs::remove(in, ec);
    fs::remove(out, ec);
  }
  if (elf && is_pvh_elf(*elf)) return {std::move(*elf), "elf"};
  log().info("kernel {} kept as bzImage (no PVH entry point found)", release);
  return {std::move(bz), "bzimage"};
}

Image Builder::run(const ImageStore& store) {
  fs::create_directories(work_);
  // The build key covers every input; an identical earlier build is reused.
  std::string agent_sha = sha256_hex(assets::guest_agent());

  const std::string kernel_pkg = resolve_kernel_package();
  const fs::path kernel_deb = step("Downloading the kernel package", [&] { return download_package(kernel_pkg); });
  fs::path busybox_deb = step("Downloading busybox-static", [&] { return download_package("busybox-static"); });

  fs::path kernel_tree = step("Unpacking the kernel", [&] { return unpack_deb(kernel_deb); });
  fs::path busybox_tree = step("Unpacking busybox", [&] { return unpack_deb(busybox_deb); });
  std::string release = kernel_pkg.substr(std::string("linux-image-").size());
  if (!fs::exists(kernel_tree / "boot" / ("vmlinuz-" + release)))
    throw Error(ErrorKind::Image, "kernel package " + kernel_pkg + " has no /boot/vmlinuz-" + release);

  // (Named variables, not a structured binding: lambdas below capture them.)
  std::pair<fs::path, std::optional<OciRootfs>> root = make_root();
  const fs::path& rootfs = root.first;
  const std::optional<OciRootfs>& oci = root.second;

  // The root's file name carries its own inputs' key (an OCI image's digest).
  std::ostringstream key_input;
  key_input << "v" << kBuilderVersion << "|" << spec_.name << ":" << spec_.tag << "|" << spec_.source_text << "|"
            << agent_sha << "|" << kernel_deb.filename().string() << "|" << busybox_deb.filename().string() << "|"
            << rootfs.filename().string();
  std::string build_key = sha256_hex(key_input.str()).substr(0, 16);
  fs::path key_file = work_ / "built" / build_key;

  if (!opts_.force && fs::exists(key_file)) {
    std::string id = read_file(key_file);
    std::error_code ec;
    if (fs::exists(store.root() / id / "manifest.json", ec)) {
      return step("Image is up to date", [&] {
        cached_ = true;
        Image img = store.resolve(id);
        store.point_name_at(img);  // what this build made is what its name means now
        return img;
      });
    }
  }

  return step("Assembling kernel, initramfs and manifest", [&] {
    fs::path stage = store.root() / (".staging-" + build_key + "-" + std::to_string(::getpid()));
    std::error_code ec;
    fs::remove_all(stage, ec);
    fs::create_directories(stage);
    auto [kernel, kernel_format] = build_kernel(kernel_tree, release);
    write_file_atomic(stage / "kernel", kernel);
    write_file_atomic(stage / "initramfs.cpio",
                      build_initramfs(kernel_tree, release, busybox_tree / "bin/busybox", spec_.modules, runner()));
    // Link the cached root filesystem when possible: both copies are read-only.
    fs::create_hard_link(rootfs, stage / "rootfs.ext4", ec);
    if (ec) fs::copy_file(rootfs, stage / "rootfs.ext4");
    for (const char* f : {"kernel", "initramfs.cpio", "rootfs.ext4"})
      fs::permissions(stage / f, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    fs::permissions(rootfs, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);

    ImageManifest m = manifest_for(stage, release, kernel_format, oci);
    m.id = m.compute_id();
    write_file_atomic(stage / "manifest.json", m.to_json());
    Image img = store.install(stage);
    fs::create_directories(key_file.parent_path());
    write_file_atomic(key_file, img.manifest.id);
    return img;
  });
}

std::pair<fs::path, std::optional<OciRootfs>> Builder::make_root() {
  if (!spec_.oci)
    return {step("Building the root filesystem (mmdebstrap, about a minute)", [&] { return build_rootfs(); }),
            std::nullopt};
  OciRootfs r = step("Building the root filesystem from the OCI image",
                     [&] { return build_oci_rootfs(spec_, work_, runner(), cached_); });
  return {r.image, std::move(r)};
}

// The manifest of the files staged in `stage` (its id is computed after).
ImageManifest Builder::manifest_for(const fs::path& stage, const std::string& release, const std::string& kernel_format,
                                    const std::optional<OciRootfs>& oci) const {
  ImageManifest m;
  m.name = spec_.name;
  m.tag = spec_.tag;
  m.arch = "x86_64";
  m.created = now_rfc3339();
  m.kernel_release = release;
  m.kernel_format = kernel_format;
  m.rootfs_format = "ext4";
  auto describe = [&](const char* name) {
    return ImageFile{name, sha256_file_hex(stage / name), fs::file_size(stage / name)};
  };
  m.kernel = describe("kernel");
  m.initramfs = describe("initramfs.cpio");
  m.rootfs = describe("rootfs.ext4");
  // Every word here is on the boot path of every VM (see bench/README.md for
  // what each buys). mitigations=off only affects isolation between processes
  // inside one guest, which is a single trust domain anyway.
  m.cmdline =
      "console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check 8250.nr_uarts=1 mitigations=off "
      "rdinit=/init gondolin.root=/dev/vda gondolin.rootfstype=ext4";
  if (!spec_.cmdline.empty()) m.cmdline += " " + spec_.cmdline;
  m.agent_protocol = proto::kProtocolVersion;
  m.spec_json = spec_.source_text;
  fill_manifest(m, oci);
  return m;
}

// The guest's defaults: the OCI config's, then the spec's env over them.
void Builder::fill_manifest(ImageManifest& m, const std::optional<OciRootfs>& oci) const {
  if (oci) {
    m.env = oci->env;
    m.workdir = oci->workdir;
    m.user = oci->user;
    m.oci_digest = oci->digest;
  }
  for (const auto& kv : spec_.env) {
    auto same = std::find_if(m.env.begin(), m.env.end(), [&](const auto& e) { return e.first == kv.first; });
    if (same != m.env.end())
      same->second = kv.second;
    else
      m.env.push_back(kv);
  }
  if (m.env.size() > 256) throw Error(ErrorKind::Image, "the image would have more than 256 environment variables");
}

}  // namespace

Image build_image(const BuildOptions& opts) {
  std::string text;
  std::string origin;
  if (opts.spec_path.empty()) {
    text = std::string(assets::default_image_spec());
    origin = "(built-in debian-base.json)";
  } else {
    std::error_code ec;
    if (!fs::is_regular_file(opts.spec_path, ec))
      throw Error(ErrorKind::Usage, "image spec " + opts.spec_path.string() + " does not exist");
    text = read_file(opts.spec_path);
    origin = opts.spec_path.string();
  }
  BuildSpec spec =
      BuildSpec::parse(text, origin, opts.spec_path.empty() ? fs::path() : fs::absolute(opts.spec_path).parent_path());
  if (!opts.name_tag.empty()) std::tie(spec.name, spec.tag) = parse_name_tag(opts.name_tag, "--tag");
  for (const char* tool : {"apt-get", "apt-cache", "dpkg-deb", "mmdebstrap", "mke2fs", "depmod"})
    if (paths::find_program(tool).empty() && !(spec.oci && std::string(tool) == "mmdebstrap"))
      throw Error(ErrorKind::Image,
                  std::string("image build needs ") + tool + " (apt-get install mmdebstrap e2fsprogs kmod dpkg apt)");
  fs::path work = opts.work_dir.empty() ? paths::cache_dir() / "build" : opts.work_dir;
  ImageStore store = opts.store ? *opts.store : ImageStore::default_store();
  Builder builder(opts, std::move(spec), fs::absolute(work));
  return builder.run(store);
}

}  // namespace gondolin
