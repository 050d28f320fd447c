// The fixture of the egress proxy tests: a test PKI and real upstream
// servers on 127.0.0.1 (plain, TLS, TLS with an untrusted certificate),
// shared by a suite; fetch() runs curl through an EgressHarness.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "config/test_knobs.h"
#include "egress_harness.h"

namespace gondolin::egress::testing {

struct Reply {
  int status = 0;
  std::string body;
  int curl_exit = 0;
  std::string curl_err;
};

// curl ... -w: the body, then the status on a last line of its own.
inline Reply fetch(EgressHarness& h, std::vector<std::string> args) {
  args.insert(args.begin(), {"-w", "\n%{http_code}"});
  auto r = h.curl(args);
  Reply out;
  out.curl_exit = r.exit_code;
  out.curl_err = r.err;
  auto nl = r.out.rfind('\n');
  if (nl != std::string::npos) {
    out.body = r.out.substr(0, nl);
    out.status = std::atoi(r.out.c_str() + nl + 1);
  }
  return out;
}

inline nlohmann::json json_of(const Reply& r) { return nlohmann::json::parse(r.body); }

class EgressProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_dir_ = new std::filesystem::path(make_temp_dir("gondolin-pki-"));
    pki_ = new TestPki(TestPki::create(*pki_dir_, {"upstream.test", "other.test", "badcert.test"}));
    plain_ = new PythonUpstream();
    tls_ = new PythonUpstream(pki_->server_cert, pki_->server_key);
    untrusted_ = new PythonUpstream(pki_->untrusted_cert, pki_->untrusted_key);
  }
  static void TearDownTestSuite() {
    delete plain_;
    delete tls_;
    delete untrusted_;
    std::filesystem::remove_all(*pki_dir_);
    delete pki_;
    delete pki_dir_;
  }

  static NetworkOptions options() {
    NetworkOptions o;
    config::test_knobs(o).loopback_hosts = {"upstream.test", "other.test", "badcert.test"};
    config::test_knobs(o).extra_upstream_ca_file = pki_->ca_cert.string();
    return o;
  }
  static std::string http_url(const std::string& host, const std::string& path) {
    return "http://" + host + ":" + std::to_string(plain_->port()) + path;
  }
  static std::string https_url(const std::string& host, const std::string& path) {
    return "https://" + host + ":" + std::to_string(tls_->port()) + path;
  }

  static std::filesystem::path* pki_dir_;
  static TestPki* pki_;
  static PythonUpstream* plain_;
  static PythonUpstream* tls_;
  static PythonUpstream* untrusted_;
};

inline std::filesystem::path* EgressProxyTest::pki_dir_;
inline TestPki* EgressProxyTest::pki_;
inline PythonUpstream* EgressProxyTest::plain_;
inline PythonUpstream* EgressProxyTest::tls_;
inline PythonUpstream* EgressProxyTest::untrusted_;

}  // namespace gondolin::egress::testing
