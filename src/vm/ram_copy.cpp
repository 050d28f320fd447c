#include "vm/ram_copy.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "gondolin/error.h"
#include "util/sparse_copy.h"

namespace gondolin::vm {

UniqueFd copy_ram_to_memfd(const std::filesystem::path& file) {
  auto fail = [&](const std::string& what) {
    return Error(ErrorKind::Io,
                 "cannot copy boot template RAM " + file.string() + ": " + what + ": " + std::strerror(errno));
  };
  UniqueFd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) throw fail("open");
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) throw fail("stat");
  UniqueFd out(::memfd_create("gondolin-ram", MFD_CLOEXEC));
  if (!out) throw fail("memfd_create");
  if (::ftruncate(out.get(), st.st_size) != 0) throw fail("size the copy");
  if (!copy_data_ranges(in.get(), out.get(), st.st_size)) throw fail("copy");
  return out;
}

}  // namespace gondolin::vm
