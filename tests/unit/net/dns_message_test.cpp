// The strict DNS parser (every byte comes from the guest) and the encoder.
#include <gtest/gtest.h>

#include "net/dns_message.h"
#include "test_frames.h"

using namespace gondolin::net;
using namespace gondolin::net::test;

TEST(NetDnsMessage, ParsesPlainQuery) {
  auto q = parse_dns_query(dns_query_bytes(0x4242, {"www", "Example", "com"}, kDnsTypeA));
  ASSERT_TRUE(q) << q.error();
  EXPECT_EQ(q->header.id, 0x4242);
  EXPECT_TRUE(q->header.recursion_desired());
  EXPECT_EQ(q->question.name, "www.Example.com");
  EXPECT_EQ(q->question.type, kDnsTypeA);
  EXPECT_EQ(q->question.klass, kDnsClassIn);
  EXPECT_FALSE(q->edns);
}

TEST(NetDnsMessage, ParsesQueryWithEdnsOpt) {
  auto bytes = dns_query_bytes(1, {"example", "com"}, kDnsTypeAaaa);
  bytes[11] = 1;  // arcount
  const std::uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 0};
  bytes.insert(bytes.end(), opt, opt + sizeof opt - 4);
  bytes[bytes.size() - 1] = 0;  // rdlength 0
  auto q = parse_dns_query(bytes);
  ASSERT_TRUE(q) << q.error();
  EXPECT_TRUE(q->edns);
  EXPECT_EQ(q->edns_udp_size, 1232);
}

TEST(NetDnsMessage, RejectsWhatIsNotASingleQuestionQuery) {
  auto base = dns_query_bytes(1, {"example", "com"}, kDnsTypeA);
  auto response = base;
  response[2] |= 0x80;
  EXPECT_STREQ(parse_dns_query(response).error(), "DNS message is a response, not a query");
  auto two = base;
  two[5] = 2;
  EXPECT_STREQ(parse_dns_query(two).error(), "DNS query without exactly one question");
  auto none = base;
  none[5] = 0;
  EXPECT_STREQ(parse_dns_query(none).error(), "DNS query without exactly one question");
  auto answers = base;
  answers[7] = 1;
  EXPECT_STREQ(parse_dns_query(answers).error(), "DNS query carries answer or authority records");
  auto trailing = base;
  trailing.push_back(0);
  EXPECT_STREQ(parse_dns_query(trailing).error(), "trailing bytes after the DNS query");
  auto additional = base;
  additional[11] = 1;
  additional.insert(additional.end(), {3, 'f', 'o', 'o', 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0});
  EXPECT_STREQ(parse_dns_query(additional).error(), "DNS additional record is not EDNS OPT");
  EXPECT_STREQ(parse_dns_query(Bytes(base).first(11)).error(), "DNS message shorter than its header");
  EXPECT_STREQ(parse_dns_query(Bytes(base).first(base.size() - 1)).error(), "DNS question truncated");
}

TEST(NetDnsMessage, EnforcesLabelAndNameLimits) {
  EXPECT_TRUE(parse_dns_query(dns_query_bytes(1, {std::string(63, 'a'), "com"}, kDnsTypeA)));
  EXPECT_STREQ(parse_dns_query(dns_query_bytes(1, {std::string(64, 'a'), "com"}, kDnsTypeA)).error(),
               "unsupported DNS label type");  // 64 = 0x40: the reserved label type bits
  // 4 labels of 63 + 1 of 1: 4*64 + 2 + 1 = 259 > 255
  std::vector<std::string> long_name(4, std::string(63, 'a'));
  long_name.push_back("b");
  EXPECT_STREQ(parse_dns_query(dns_query_bytes(1, long_name, kDnsTypeA)).error(), "DNS name longer than 255 bytes");
  // exactly 255 on the wire: 3*64 + 62 + 1
  std::vector<std::string> max_name(3, std::string(63, 'a'));
  max_name.push_back(std::string(61, 'c'));
  EXPECT_TRUE(parse_dns_query(dns_query_bytes(1, max_name, kDnsTypeA)));
  EXPECT_STREQ(parse_dns_query(dns_query_bytes(1, {"bad label", "com"}, kDnsTypeA)).error(),
               "DNS label with characters other than letters, digits, '-' and '_'");
  EXPECT_STREQ(parse_dns_query(dns_query_bytes(1, {std::string("a\0b", 3)}, kDnsTypeA)).error(),
               "DNS label with characters other than letters, digits, '-' and '_'");
  EXPECT_STREQ(parse_dns_query(dns_query_bytes(1, {"a.b"}, kDnsTypeA)).error(),
               "DNS label with characters other than letters, digits, '-' and '_'");
  std::vector<std::uint8_t> big = dns_query_bytes(1, {"a"}, kDnsTypeA);
  big.resize(kMaxDnsQuerySize + 1);
  EXPECT_STREQ(parse_dns_query(big).error(), "DNS query larger than 512 bytes");
}

TEST(NetDnsMessage, CompressionPointersMustGoBackwardsAndEnd) {
  // A question whose name is a pointer to itself, and one pointing forwards.
  std::vector<std::uint8_t> self = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
  EXPECT_STREQ(parse_dns_query(self).error(), "DNS compression pointer does not point backwards");
  std::vector<std::uint8_t> forward = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 0, 1, 0, 1};
  EXPECT_STREQ(parse_dns_query(forward).error(), "DNS compression pointer does not point backwards");

  // In a message, a valid backward pointer reads the earlier name...
  std::vector<std::uint8_t> msg = {3, 'c', 'o', 'm', 0, 3, 'w', 'w', 'w', 0xc0, 0};
  std::size_t off = 5;
  auto name = read_dns_name(msg, off);
  ASSERT_TRUE(name) << name.error();
  EXPECT_EQ(name.value(), "www.com");
  EXPECT_EQ(off, msg.size());
  // ...but a chain of pointers may not climb back up to where it started.
  std::vector<std::uint8_t> loop = {0xc0, 2, 0xc0, 0};
  std::size_t loff = 2;
  EXPECT_FALSE(read_dns_name(loop, loff));
  std::vector<std::uint8_t> cut = {3, 'c', 'o'};
  std::size_t coff = 0;
  EXPECT_STREQ(read_dns_name(cut, coff).error(), "DNS name runs past the message");
  std::vector<std::uint8_t> half_pointer = {0xc0};
  std::size_t hoff = 0;
  EXPECT_STREQ(read_dns_name(half_pointer, hoff).error(), "DNS name runs past the message");
}

TEST(NetDnsMessage, ResponseEchoesQuestionAndPointsAnswersAtIt) {
  auto q = parse_dns_query(dns_query_bytes(0x0102, {"Example", "com"}, kDnsTypeA));
  ASSERT_TRUE(q);
  std::vector<DnsRecord> answers{{kDnsTypeA, 60, {198, 18, 0, 1}}};
  auto r = build_dns_response(q.value(), DnsRcode::NoError, answers);
  auto head = parse_dns_response_head(r);
  ASSERT_TRUE(head) << head.error();
  EXPECT_EQ(head->header.id, 0x0102);
  EXPECT_TRUE(head->header.is_response());
  EXPECT_EQ(head->header.rcode(), 0);
  EXPECT_EQ(head->header.ancount, 1);
  EXPECT_EQ(head->question.name, "Example.com");  // case kept (0x20 randomisation)
  // answer: pointer to offset 12, type A, class IN, TTL 60, 4 bytes
  const std::size_t a = r.size() - 16;
  EXPECT_EQ(load_u16(&r[a]), 0xc00c);
  EXPECT_EQ(load_u16(&r[a + 2]), kDnsTypeA);
  EXPECT_EQ(load_u32(&r[a + 6]), 60u);
  EXPECT_EQ(r[a + 12], 198);

  auto err = build_dns_error(q->header, DnsRcode::FormErr);
  auto eh = parse_dns_header(err);
  ASSERT_TRUE(eh);
  EXPECT_EQ(eh->rcode(), 1);
  EXPECT_EQ(eh->qdcount, 0);
}

TEST(NetDnsMessage, BuiltQueryParsesBack) {
  DnsQuestion question{"git.example.org", kDnsTypeAaaa, kDnsClassIn};
  auto bytes = build_dns_query(77, question, 1232);
  auto q = parse_dns_query(bytes);
  ASSERT_TRUE(q) << q.error();
  EXPECT_EQ(q->header.id, 77);
  EXPECT_EQ(q->question.name, "git.example.org");
  EXPECT_TRUE(q->edns);
  EXPECT_EQ(q->edns_udp_size, 1232);
}
