#include "util/sha256.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <vector>

#include "gondolin/error.h"
#include "util/files.h"
#include "util/hex.h"

namespace gondolin {

namespace {

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

MdCtx new_sha256() {
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
    throw Error(ErrorKind::Internal, "OpenSSL cannot initialise SHA-256");
  return ctx;
}

std::string finish(EVP_MD_CTX* ctx) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx, md, &n);
  return lower_hex(std::string_view(reinterpret_cast<const char*>(md), n));
}

}  // namespace

struct Sha256::Ctx {
  MdCtx md = new_sha256();
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;
void Sha256::update(std::string_view data) { EVP_DigestUpdate(ctx_->md.get(), data.data(), data.size()); }
std::string Sha256::hex() { return finish(ctx_->md.get()); }

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex();
}

std::string sha256_file_hex(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, "cannot read " + path.string());
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) h.update(std::string_view(buf.data(), static_cast<std::size_t>(in.gcount())));
  }
  if (in.bad()) throw Error(ErrorKind::Io, "error reading " + path.string());
  return h.hex();
}

std::string sha256_file_hex_memo(const std::filesystem::path& path, const std::filesystem::path& memo_dir) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return sha256_file_hex(path);  // its error
  const std::string identity = std::filesystem::absolute(path).string() + "|" + std::to_string(st.st_dev) + "|" +
                               std::to_string(st.st_ino) + "|" + std::to_string(st.st_size) + "|" +
                               std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "|" +
                               std::to_string(st.st_ctim.tv_sec) + "." + std::to_string(st.st_ctim.tv_nsec);
  const std::filesystem::path memo = memo_dir / sha256_hex(identity).substr(0, 32);
  std::error_code ec;
  if (std::filesystem::file_size(memo, ec) == 64 && !ec) {
    std::ifstream in(memo);
    std::string known;
    if (in >> known && known.size() == 64 && is_lower_hex(known)) return known;
  }
  std::string digest = sha256_file_hex(path);
  std::filesystem::create_directories(memo_dir, ec);
  if (!ec) {
    try {
      write_file_atomic(memo, digest);
    } catch (const Error&) {
      // A memo we cannot write only costs the next build a read.
    }
  }
  return digest;
}

}  // namespace gondolin
