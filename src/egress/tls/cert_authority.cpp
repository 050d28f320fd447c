#include "egress/tls/cert_authority.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>

#include <boost/asio/ip/address.hpp>

#include <cerrno>
#include <cstring>

#include "gondolin/error.h"
#include "util/files.h"
#include "util/paths.h"
#include "util/unique_fd.h"

namespace gondolin::egress {
namespace {

constexpr long kDay = 24L * 3600;
constexpr long kCaValidity = 3650 * kDay;
constexpr long kLeafValidity = 90 * kDay;

[[noreturn]] void ssl_fail(const std::string& what) {
  throw Error(ErrorKind::Internal, what + ": " + openssl_error_text());
}

EvpPkeyPtr generate_key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) ssl_fail("cannot generate a P-256 key");
  return key;
}

void set_random_serial(X509* cert) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) ssl_fail("no randomness for a serial number");
  raw[0] &= 0x7f;  // positive
  raw[0] |= 0x01;  // and never zero-led
  std::unique_ptr<BIGNUM, OpenSslDeleter<BN_free>> bn(BN_bin2bn(raw, sizeof raw, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert))) ssl_fail("cannot set a serial number");
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    ssl_fail(std::string("cannot add certificate extension ") + value);
}

void set_name(X509_NAME* name, const std::string& org, const std::string& cn) {
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0);
  if (!cn.empty())
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                               0);
}

X509Ptr make_ca_certificate(EVP_PKEY* key) {
  X509Ptr cert(X509_new());
  if (!cert) ssl_fail("cannot create a certificate");
  X509_set_version(cert.get(), 2);
  set_random_serial(cert.get());
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kDay);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), kCaValidity);
  X509_set_pubkey(cert.get(), key);
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  set_name(X509_get_subject_name(cert.get()), "Gondolin", "Gondolin MITM CA (" + std::string(host).substr(0, 40) + ")");
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
  add_ext(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
  add_ext(cert.get(), cert.get(), NID_authority_key_identifier, "keyid:always");
  if (X509_sign(cert.get(), key, EVP_sha256()) == 0) ssl_fail("cannot sign the CA certificate");
  return cert;
}

std::string to_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) ssl_fail("cannot encode a certificate");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string key_to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    ssl_fail("cannot encode a key");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

std::filesystem::path CertificateAuthority::default_dir() { return paths::config_dir() / "mitm"; }

CertificateAuthority::CertificateAuthority(EvpPkeyPtr key, X509Ptr cert, std::string pem)
    : ca_key_(std::move(key)), ca_cert_(std::move(cert)), ca_pem_(std::move(pem)), leaf_key_(generate_key()) {}

std::shared_ptr<CertificateAuthority> CertificateAuthority::load_or_create(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(ErrorKind::Io, "cannot create " + dir.string() + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  const auto key_path = dir / "ca.key", cert_path = dir / "ca.crt";

  UniqueFd lock(::open((dir / ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX) != 0)
    throw Error(ErrorKind::Io, "cannot lock " + (dir / ".lock").string() + ": " + std::strerror(errno));

  if (!std::filesystem::exists(key_path) || !std::filesystem::exists(cert_path)) {
    EvpPkeyPtr key = generate_key();
    X509Ptr cert = make_ca_certificate(key.get());
    using std::filesystem::perms;
    write_file_atomic(key_path, key_to_pem(key.get()), perms::owner_read | perms::owner_write, Durability::Synced);
    std::string pem = to_pem(cert.get());
    write_file_atomic(cert_path, pem, perms::owner_read | perms::owner_write | perms::group_read | perms::others_read,
                      Durability::Synced);
    return std::make_shared<CertificateAuthority>(std::move(key), std::move(cert), std::move(pem));
  }

  struct stat st {};
  if (::stat(key_path.c_str(), &st) != 0)
    throw Error(ErrorKind::Io, "cannot stat " + key_path.string() + ": " + std::strerror(errno));
  if ((st.st_mode & 077) != 0)
    throw Error(ErrorKind::Io, "the MITM CA key " + key_path.string() + " is accessible by other users; chmod 600 it");
  std::string key_pem = read_file(key_path), cert_pem = read_file(cert_path);
  BioPtr kb(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  BioPtr cb(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  X509Ptr cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!key || !cert)
    throw Error(ErrorKind::Io, "the MITM CA in " + dir.string() + " is unreadable: " + openssl_error_text());
  if (X509_check_private_key(cert.get(), key.get()) != 1)
    throw Error(ErrorKind::Io, "the MITM CA key and certificate in " + dir.string() + " do not match");
  return std::make_shared<CertificateAuthority>(std::move(key), std::move(cert), to_pem(cert.get()));
}

std::shared_ptr<const LeafCertificate> CertificateAuthority::leaf_for(const std::string& host) {
  if (auto it = cache_.find(host); it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.second);
    return it->second.first;
  }
  auto leaf = mint(host);
  lru_.push_front(host);
  cache_.emplace(host, std::make_pair(leaf, lru_.begin()));
  if (cache_.size() > kLeafCacheSize) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
  return leaf;
}

std::shared_ptr<const LeafCertificate> CertificateAuthority::mint(const std::string& host) {
  auto leaf = std::make_shared<LeafCertificate>();
  leaf->certificate.reset(X509_new());
  X509* cert = leaf->certificate.get();
  if (!cert) ssl_fail("cannot create a certificate");
  X509_set_version(cert, 2);
  set_random_serial(cert);
  X509_gmtime_adj(X509_getm_notBefore(cert), -kDay);
  X509_gmtime_adj(X509_getm_notAfter(cert), kLeafValidity);
  X509_set_pubkey(cert, leaf_key_.get());
  set_name(X509_get_subject_name(cert), "Gondolin", host.size() <= 64 ? host : std::string());
  X509_set_issuer_name(cert, X509_get_subject_name(ca_cert_.get()));
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  std::string san = (ec ? "DNS:" : "IP:") + host;
  add_ext(cert, ca_cert_.get(), NID_subject_alt_name, san.c_str());
  add_ext(cert, ca_cert_.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_ext(cert, ca_cert_.get(), NID_key_usage, "critical,digitalSignature");
  add_ext(cert, ca_cert_.get(), NID_ext_key_usage, "serverAuth");
  add_ext(cert, ca_cert_.get(), NID_subject_key_identifier, "hash");
  add_ext(cert, ca_cert_.get(), NID_authority_key_identifier, "keyid:always");
  if (X509_sign(cert, ca_key_.get(), EVP_sha256()) == 0) ssl_fail("cannot sign a certificate for " + host);
  leaf->key = leaf_key_.get();
  return leaf;
}

}  // namespace gondolin::egress
