#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <filesystem>

#include "egress/tls/cert_authority.h"
#include "egress/tls/tls_client_hello.h"
#include "gondolin/error.h"

using namespace gondolin;
using namespace gondolin::egress;

namespace {

// The first flight a real OpenSSL client sends for `sni` (empty: no SNI).
std::string real_client_hello(const std::string& sni) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, rbio, wbio);
  if (!sni.empty())
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(sni.c_str()));
  SSL_set_connect_state(ssl);
  SSL_do_handshake(ssl);
  char* data = nullptr;
  long n = BIO_get_mem_data(wbio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return out;
}

struct TempDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("gondolin-ca-test-" + std::to_string(::getpid()));
  TempDir() { std::filesystem::remove_all(path); }
  ~TempDir() { std::filesystem::remove_all(path); }
};

}  // namespace

TEST(ClientHello, ReadsSniFromARealHelloAtEverySplit) {
  std::string hello = real_client_hello("api.example.com");
  for (std::size_t cut = 0; cut < hello.size(); ++cut)
    ASSERT_EQ(scan_client_hello(std::string_view(hello).substr(0, cut)).state, ClientHelloScan::NeedMore) << cut;
  auto s = scan_client_hello(hello);
  ASSERT_EQ(s.state, ClientHelloScan::Done);
  EXPECT_EQ(s.server_name.value(), "api.example.com");

  auto none = scan_client_hello(real_client_hello(""));
  ASSERT_EQ(none.state, ClientHelloScan::Done);
  EXPECT_FALSE(none.server_name);
}

TEST(ClientHello, HelloSplitAcrossRecords) {
  std::string hello = real_client_hello("split.example.com");
  std::string body = hello.substr(5);
  std::string two;
  for (std::string part : {body.substr(0, 40), body.substr(40)}) {
    two += std::string("\x16\x03\x01", 3);
    two += static_cast<char>(part.size() >> 8);
    two += static_cast<char>(part.size() & 0xff);
    two += part;
  }
  auto s = scan_client_hello(two);
  ASSERT_EQ(s.state, ClientHelloScan::Done);
  EXPECT_EQ(s.server_name.value(), "split.example.com");
}

TEST(ClientHello, RejectsGarbage) {
  EXPECT_EQ(scan_client_hello("GET / HTTP/1.1\r\n").state, ClientHelloScan::Invalid);
  EXPECT_EQ(scan_client_hello(std::string("\x16\x03\x01\x00\x00", 5)).state, ClientHelloScan::Invalid);
  std::string hello = real_client_hello("x.example.com");
  hello[5] = 2;  // ServerHello, not ClientHello
  EXPECT_EQ(scan_client_hello(hello).state, ClientHelloScan::Invalid);
  std::string truncated = real_client_hello("x.example.com");
  // Lie about the extensions length inside a complete record.
  truncated[5 + 4 + 2 + 32 + 1 + static_cast<unsigned char>(truncated[5 + 4 + 2 + 32])] ^= 0x7f;
  EXPECT_NE(scan_client_hello(truncated).state, ClientHelloScan::NeedMore);
}

TEST(CertificateAuthority, CreatedOnceWithPrivateKeyAndMintsVerifiableLeaves) {
  TempDir dir;
  auto ca = CertificateAuthority::load_or_create(dir.path);
  struct stat st {};
  ASSERT_EQ(::stat((dir.path / "ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = CertificateAuthority::load_or_create(dir.path);
  EXPECT_EQ(ca->certificate_pem(), again->certificate_pem()) << "generated once, then reused";
  EXPECT_EQ(ca->certificate_pem().find("PRIVATE KEY"), std::string::npos);

  auto leaf = ca->leaf_for("api.example.com");
  EXPECT_EQ(leaf, ca->leaf_for("api.example.com")) << "cached";
  // Verify the leaf against the CA with hostname checking, as a client would.
  BioPtr bio(BIO_new_mem_buf(ca->certificate_pem().data(), static_cast<int>(ca->certificate_pem().size())));
  X509Ptr root(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, root.get());
  X509_STORE_CTX* vctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(vctx, store, leaf->certificate.get(), nullptr);
  X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(vctx), "api.example.com", 0);
  X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(vctx), X509_V_FLAG_X509_STRICT);
  EXPECT_EQ(X509_verify_cert(vctx), 1) << X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx));
  X509_STORE_CTX_free(vctx);

  vctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(vctx, store, leaf->certificate.get(), nullptr);
  X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(vctx), "other.example.com", 0);
  EXPECT_NE(X509_verify_cert(vctx), 1);
  X509_STORE_CTX_free(vctx);
  X509_STORE_free(store);
}

TEST(CertificateAuthority, RefusesAKeyOthersCanRead) {
  TempDir dir;
  CertificateAuthority::load_or_create(dir.path);
  ::chmod((dir.path / "ca.key").c_str(), 0644);
  try {
    CertificateAuthority::load_or_create(dir.path);
    FAIL() << "accepted a world-readable CA key";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos);
  }
}
