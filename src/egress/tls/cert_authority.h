// The per-user MITM certificate authority: a P-256 key and a self-signed CA
// certificate, created once (key file mode 0600) and reused; and the leaf
// certificates it mints for the host names guests connect to, cached.
#pragma once

#include <filesystem>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "egress/tls/openssl_util.h"

namespace gondolin::egress {

struct LeafCertificate {
  X509Ptr certificate;
  EVP_PKEY* key = nullptr;  // owned by the authority; one key for every leaf
};

class CertificateAuthority {
 public:
  static constexpr std::size_t kLeafCacheSize = 512;

  // Loads <dir>/ca.key and <dir>/ca.crt, creating both if absent (under a
  // lock, so concurrent first runs agree). Throws gondolin::Error (Io) if the
  // files are unreadable, inconsistent, or the key is readable by others.
  static std::shared_ptr<CertificateAuthority> load_or_create(const std::filesystem::path& dir);
  // $XDG_CONFIG_HOME/gondolin/mitm (default ~/.config/gondolin/mitm).
  static std::filesystem::path default_dir();

  const std::string& certificate_pem() const { return ca_pem_; }
  // A certificate for `host` (a DNS name or an IP literal) signed by this CA.
  // Throws gondolin::Error (Internal) if OpenSSL fails.
  std::shared_ptr<const LeafCertificate> leaf_for(const std::string& host);

  CertificateAuthority(EvpPkeyPtr key, X509Ptr cert, std::string pem);

 private:
  std::shared_ptr<const LeafCertificate> mint(const std::string& host);

  EvpPkeyPtr ca_key_;
  X509Ptr ca_cert_;
  std::string ca_pem_;
  EvpPkeyPtr leaf_key_;
  std::list<std::string> lru_;  // most recent first
  std::unordered_map<std::string, std::pair<std::shared_ptr<const LeafCertificate>, std::list<std::string>::iterator>>
      cache_;
};

}  // namespace gondolin::egress
