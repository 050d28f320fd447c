#include "cli/mount_flags.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "gondolin/error.h"
#include "vfs/mount_set.h"

namespace gondolin::cli {

HostfsSpec parse_hostfs_spec(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::Usage, "invalid --mount-hostfs '" + text + "': " + why);
  };
  HostfsSpec spec;
  std::string rest = text;
  if (rest.size() > 3 && rest.compare(rest.size() - 3, 3, ":ro") == 0) {
    spec.read_only = true;
    rest.resize(rest.size() - 3);
  } else if (rest.size() > 3 && rest.compare(rest.size() - 3, 3, ":rw") == 0) {
    rest.resize(rest.size() - 3);
  }
  // The guest path is absolute and has no ':', so the last ':' separates it.
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= rest.size())
    throw bad("expected HOST_DIR:GUEST_PATH[:ro]");
  std::string host = rest.substr(0, colon);
  spec.guest_path = vfs::normalize_mount_path(rest.substr(colon + 1), "--mount-hostfs");
  struct stat st{};
  if (::stat(host.c_str(), &st) != 0)
    throw bad("host path " + host + (errno == ENOENT ? " does not exist" : ": " + std::string(std::strerror(errno))));
  if (!S_ISDIR(st.st_mode)) throw bad("host path " + host + " is not a directory");
  std::error_code ec;
  spec.host_dir = std::filesystem::canonical(host, ec);
  if (ec) throw bad("host path " + host + ": " + ec.message());
  return spec;
}

std::vector<vfs::Mount> build_mounts(const std::vector<std::string>& hostfs, const std::vector<std::string>& memfs,
                                     const std::vector<std::string>& hide) {
  std::vector<vfs::Mount> mounts;
  for (const auto& text : hostfs) {
    HostfsSpec spec = parse_hostfs_spec(text);
    auto provider = vfs::host_dir(spec.host_dir);
    if (spec.read_only) provider = vfs::read_only(std::move(provider));
    mounts.push_back(vfs::Mount{spec.guest_path, std::move(provider)});
  }
  for (const auto& text : memfs)
    mounts.push_back(vfs::Mount{vfs::normalize_mount_path(text, "--mount-memfs"), vfs::memory()});

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
    if (best == mounts.size())
      throw bad("only paths inside a --mount-hostfs or --mount-memfs mount can be hidden");
    globs[best].push_back(glob.substr(mounts[best].guest_path.size() + 1));
  }
  for (auto& [index, list] : globs) mounts[index].provider = vfs::hide(mounts[index].provider, list);
  return mounts;
}

}  // namespace gondolin::cli
