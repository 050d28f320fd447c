#include "config/mount_rules.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>

#include "config/setting_error.h"
#include "gondolin/error.h"
#include "proto/file_messages.h"

namespace gondolin::config {

namespace {

// Splits "PATHS[:OPTIONS]": guest paths start with '/', options never do, so
// a last ':' segment without one is the options.
std::pair<std::string, std::string> split_suffix(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 >= text.size() || text[colon + 1] == '/') return {text, ""};
  return {text.substr(0, colon), text.substr(colon + 1)};
}

MountSuffix parse_suffix(const std::string& options, const std::function<Error(const std::string&)>& bad) {
  MountSuffix out;
  std::size_t pos = 0;
  while (pos <= options.size()) {
    std::size_t end = options.find(',', pos);
    if (end == std::string::npos) end = options.size();
    const std::string item = options.substr(pos, end - pos);
    pos = end + 1;
    if (item == "ro")
      out.read_only = true;
    else if (item == "rw")
      out.read_only = false;
    else if (item == "transport=auto")
      out.transport = vfs::FsTransport::Auto;
    else if (item == "transport=serial")
      out.transport = vfs::FsTransport::Serial;
    else if (item == "transport=virtiofs")
      out.transport = vfs::FsTransport::Virtiofs;
    else if (item == "cache=auto")
      out.direct_io = false;
    else if (item == "cache=direct")
      out.direct_io = true;
    else
      throw bad("unknown option '" + item + "' (use ro, rw, transport=auto|serial|virtiofs, cache=auto|direct)");
  }
  return out;
}

vfs::MountOptions with_suffix(vfs::MountOptions options, const MountSuffix& suffix) {
  if (suffix.transport) options.transport = *suffix.transport;
  if (suffix.direct_io) options.direct_io = *suffix.direct_io;
  return options;
}

// The one-line error for a bad flag value: "invalid FLAG 'TEXT': WHY".
std::function<Error(const std::string&)> flag_error(const char* flag, const std::string& text) {
  return [flag, &text](const std::string& why) { return invalid_setting(flag, text, why); };
}

// A spec's paths and its parsed options suffix.
std::pair<std::string, MountSuffix> split_spec(const std::string& text,
                                               const std::function<Error(const std::string&)>& bad) {
  auto [paths, options] = split_suffix(text);
  return {paths, options.empty() ? MountSuffix{} : parse_suffix(options, bad)};
}

}  // namespace

std::string normalize_mount_path(const std::string& path, const std::string& what) {
  auto bad = [&](const std::string& why) { return Error(ErrorKind::Usage, what + " '" + path + "': " + why); };
  if (path.empty() || path[0] != '/') throw bad("guest path must be absolute");
  if (path.find('\0') != std::string::npos) throw bad("guest path contains a NUL byte");
  if (path.size() >= proto::kMaxPathLength) throw bad("guest path is too long");
  std::string out;
  std::size_t pos = 0;
  while (pos < path.size()) {
    std::size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(pos, end - pos);
    if (part == "." || part == "..") throw bad("guest path must not contain '.' or '..'");
    if (!part.empty()) out += "/" + part;
    pos = end + 1;
  }
  if (out.empty()) throw bad("cannot mount over the guest's root directory");
  for (const char* reserved : {"/proc", "/sys", "/dev"})
    if (out == reserved || out.rfind(std::string(reserved) + "/", 0) == 0)
      throw bad(std::string("cannot mount inside ") + reserved);
  return out;
}

HostfsSpec parse_hostfs_spec(const std::string& text) {
  auto bad = flag_error("--mount-hostfs", text);
  HostfsSpec spec;
  auto [rest, suffix] = split_spec(text, bad);
  spec.suffix = suffix;
  // The guest path is absolute and has no ':', so the last ':' separates it.
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= rest.size())
    throw bad("expected HOST_DIR:GUEST_PATH[:OPTIONS]");
  std::string host = rest.substr(0, colon);
  spec.guest_path = normalize_mount_path(rest.substr(colon + 1), "--mount-hostfs");
  struct stat st {};
  if (::stat(host.c_str(), &st) != 0)
    throw bad("host path " + host + (errno == ENOENT ? " does not exist" : ": " + std::string(std::strerror(errno))));
  if (!S_ISDIR(st.st_mode)) throw bad("host path " + host + " is not a directory");
  std::error_code ec;
  spec.host_dir = std::filesystem::canonical(host, ec);
  if (ec) throw bad("host path " + host + ": " + ec.message());
  return spec;
}

MemfsSpec parse_memfs_spec(const std::string& text) {
  auto bad = flag_error("--mount-memfs", text);
  auto [path, suffix] = split_spec(text, bad);
  if (suffix.read_only) throw bad("an in-memory mount starts empty, so it cannot be read-only");
  return MemfsSpec{normalize_mount_path(path, "--mount-memfs"), suffix};
}

std::vector<vfs::Mount> build_mounts(const std::vector<std::string>& hostfs, const std::vector<std::string>& memfs,
                                     const std::vector<std::string>& hide, const vfs::MountOptions& defaults) {
  std::vector<vfs::Mount> mounts;
  for (const auto& text : hostfs) {
    HostfsSpec spec = parse_hostfs_spec(text);
    auto provider = vfs::host_dir(spec.host_dir);
    if (spec.suffix.read_only) provider = vfs::read_only(std::move(provider));
    mounts.push_back(vfs::Mount{spec.guest_path, std::move(provider), with_suffix(defaults, spec.suffix)});
  }
  for (const auto& text : memfs) {
    MemfsSpec spec = parse_memfs_spec(text);
    mounts.push_back(vfs::Mount{spec.guest_path, vfs::memory(), with_suffix(defaults, spec.suffix)});
  }

  std::map<std::size_t, std::vector<std::string>> globs;  // mount index -> relative globs
  for (const auto& glob : hide) {
    auto bad = [&](const std::string& why) { return Error(ErrorKind::Usage, "invalid --hide '" + glob + "': " + why); };
    if (glob.empty() || glob[0] != '/') throw bad("must be an absolute guest path glob");
    if (glob.rfind("/**/", 0) == 0) {
      for (std::size_t i = 0; i < mounts.size(); ++i) globs[i].push_back(glob.substr(1));
      if (mounts.empty()) throw bad("there are no mounts to hide anything in");
      continue;
    }
    std::size_t best = mounts.size();
    for (std::size_t i = 0; i < mounts.size(); ++i) {
      const std::string& m = mounts[i].guest_path;
      if (glob.size() > m.size() + 1 && glob.compare(0, m.size(), m) == 0 && glob[m.size()] == '/' &&
          (best == mounts.size() || m.size() > mounts[best].guest_path.size()))
        best = i;
    }
    if (best == mounts.size()) throw bad("only paths inside a --mount-hostfs or --mount-memfs mount can be hidden");
    globs[best].push_back(glob.substr(mounts[best].guest_path.size() + 1));
  }
  for (auto& [index, list] : globs) mounts[index].provider = vfs::hide(mounts[index].provider, list);
  return mounts;
}

}  // namespace gondolin::config
