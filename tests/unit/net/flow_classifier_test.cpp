// The flow classifier: protocol by first bytes, and when to wait for more.
#include <gtest/gtest.h>

#include <string>

#include "net/flow_classifier.h"

using namespace gondolin::net;

namespace {

PrefixVerdict classify(const std::string& s) {
  return classify_prefix(Bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}
FlowKind final_of(const std::string& s) {
  return final_kind(Bytes(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
}

// The start of a real TLS 1.2/1.3 ClientHello record.
const std::string kClientHello = std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);

}  // namespace

TEST(NetFlowClassifier, RecognisesHttpRequestLines) {
  EXPECT_EQ(classify("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), PrefixVerdict::Http);
  EXPECT_EQ(classify("POST /upload?x=1 HTTP/1.0\r\n"), PrefixVerdict::Http);
  EXPECT_EQ(classify("CONNECT example.com:443 HTTP/1.1\r\n"), PrefixVerdict::Http);  // egress refuses it
  EXPECT_EQ(classify("PROPFIND /dav HTTP/1.1\r\n"), PrefixVerdict::Http);
}

TEST(NetFlowClassifier, WaitsWhileAPrefixCouldStillBeAnything) {
  EXPECT_EQ(classify(""), PrefixVerdict::NeedMore);
  EXPECT_EQ(classify("G"), PrefixVerdict::NeedMore);
  EXPECT_EQ(classify("GET /index.ht"), PrefixVerdict::NeedMore);
  EXPECT_EQ(classify("GET / HTTP/1"), PrefixVerdict::NeedMore);
  EXPECT_EQ(classify("SSH-2."), PrefixVerdict::NeedMore);
  EXPECT_EQ(classify(kClientHello.substr(0, 5)), PrefixVerdict::NeedMore);
  EXPECT_EQ(final_of("GET / HTTP/1"), FlowKind::Other);  // nothing more will come
  EXPECT_EQ(final_of(""), FlowKind::Other);              // a silent client
}

TEST(NetFlowClassifier, RejectsNearMissesOfHttp) {
  EXPECT_EQ(classify("GET / HTTP/2.0\r\n"), PrefixVerdict::Other);
  EXPECT_EQ(classify("GET  / HTTP/1.1\r\n"), PrefixVerdict::Other);
  EXPECT_EQ(classify("GET / HTTP/1.x\r\n"), PrefixVerdict::Other);
  EXPECT_EQ(classify("GET /\x01 HTTP/1.1\r\n"), PrefixVerdict::Other);
  EXPECT_EQ(classify("G(T / HTTP/1.1\r\n"), PrefixVerdict::Other);
  EXPECT_EQ(classify(" GET / HTTP/1.1\r\n"), PrefixVerdict::Other);
  EXPECT_EQ(classify(std::string(33, 'A') + " / HTTP/1.1\r\n"), PrefixVerdict::Other);
  EXPECT_EQ(classify("HELO mail.example.com\r\n"), PrefixVerdict::Other);
}

TEST(NetFlowClassifier, AnOverlongTargetAtTheBoundIsStillHttp) {
  std::string line = "GET /" + std::string(kMaxClassifyPrefix, 'a');
  line.resize(kMaxClassifyPrefix);
  EXPECT_EQ(classify(line), PrefixVerdict::Http);
  EXPECT_EQ(classify(line.substr(0, 4000)), PrefixVerdict::NeedMore);
}

TEST(NetFlowClassifier, RecognisesTlsClientHello) {
  EXPECT_EQ(classify(kClientHello), PrefixVerdict::Tls);
  EXPECT_EQ(classify(kClientHello.substr(0, 6)), PrefixVerdict::Tls);
  std::string server_hello = kClientHello;
  server_hello[5] = 0x02;
  EXPECT_EQ(classify(server_hello), PrefixVerdict::Other);
  std::string alert = kClientHello;
  alert[0] = 0x15;
  EXPECT_EQ(classify(alert), PrefixVerdict::Other);
  std::string ssl2ish = kClientHello;
  ssl2ish[1] = 0x02;
  EXPECT_EQ(classify(ssl2ish), PrefixVerdict::Other);
  std::string huge = kClientHello;
  huge[3] = '\x7f';  // record longer than TLS allows
  EXPECT_EQ(classify(huge), PrefixVerdict::Other);
}

TEST(NetFlowClassifier, RecognisesSshBanner) {
  EXPECT_EQ(classify("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), PrefixVerdict::Ssh);
  EXPECT_EQ(classify("SSH-1.99-Cisco\r\n"), PrefixVerdict::Ssh);
  EXPECT_EQ(classify("SSH-1.5-old\r\n"), PrefixVerdict::Other);
}

TEST(NetFlowClassifier, BinaryAndTextNoiseIsOther) {
  EXPECT_EQ(classify(std::string("\x00\x01\x02\x03", 4)), PrefixVerdict::Other);
  EXPECT_EQ(classify("hello\n"), PrefixVerdict::Other);
  EXPECT_EQ(final_of("hello\n"), FlowKind::Other);
  EXPECT_EQ(final_of("GET / HTTP/1.1\r\n"), FlowKind::Http);
  EXPECT_STREQ(to_string(FlowKind::Tls), "tls");
}
