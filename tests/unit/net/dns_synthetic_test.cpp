// Synthetic DNS: the answers, the per-host mapping and its bound.
#include <gtest/gtest.h>

#include "net/dns_synthetic.h"
#include "test_frames.h"

using namespace gondolin;
using namespace gondolin::net;
using namespace gondolin::net::test;

namespace {

struct Answer {
  std::uint8_t rcode = 0;
  std::vector<std::vector<std::uint8_t>> rdata;  // one per answer
};

Answer ask(SyntheticDns& dns, const std::vector<std::string>& labels, std::uint16_t type = kDnsTypeA,
           std::uint16_t klass = kDnsClassIn) {
  auto q = parse_dns_query(dns_query_bytes(9, labels, type, klass));
  EXPECT_TRUE(q) << q.error();
  auto r = dns.answer(q.value());
  auto head = parse_dns_response_head(r);
  EXPECT_TRUE(head) << head.error();
  Answer a;
  a.rcode = head->header.rcode();
  // Skip header and question, then read each answer's rdata.
  std::size_t off = 12;
  EXPECT_TRUE(read_dns_name(r, off));
  off += 4;
  for (int i = 0; i < head->header.ancount; ++i) {
    off += 2 + 2 + 2 + 4;
    std::uint16_t len = load_u16(&r[off]);
    off += 2;
    a.rdata.emplace_back(r.begin() + static_cast<long>(off), r.begin() + static_cast<long>(off + len));
    off += len;
  }
  EXPECT_EQ(off, r.size());
  return a;
}

Ipv4 as_ipv4(const std::vector<std::uint8_t>& v) {
  EXPECT_EQ(v.size(), 4u);
  return Ipv4{v[0], v[1], v[2], v[3]};
}

}  // namespace

TEST(NetSyntheticDns, SingleModeAnswersOneAddressForEveryName) {
  SyntheticDns dns(SyntheticHostMapping::Single, layout());
  auto a = ask(dns, {"example", "com"});
  auto b = ask(dns, {"other", "test"});
  ASSERT_EQ(a.rdata.size(), 1u);
  EXPECT_EQ(as_ipv4(a.rdata[0]), (Ipv4{198, 18, 0, 1}));
  EXPECT_EQ(a.rdata, b.rdata);
  EXPECT_FALSE(dns.hostname_for(Ipv4{198, 18, 0, 1}));
}

TEST(NetSyntheticDns, PerHostModeGivesEachNameItsOwnStableAddress) {
  SyntheticDns dns(SyntheticHostMapping::PerHost, layout());
  Ipv4 a = as_ipv4(ask(dns, {"example", "com"}).rdata.at(0));
  Ipv4 b = as_ipv4(ask(dns, {"api", "github", "com"}).rdata.at(0));
  Ipv4 a_again = as_ipv4(ask(dns, {"EXAMPLE", "Com"}).rdata.at(0));
  EXPECT_NE(a, b);
  EXPECT_EQ(a, a_again);
  EXPECT_EQ(a[0], 198);
  EXPECT_TRUE(a[1] == 18 || a[1] == 19);
  EXPECT_EQ(dns.hostname_for(a), "example.com");
  EXPECT_EQ(dns.hostname_for(b), "api.github.com");
  EXPECT_FALSE(dns.hostname_for(Ipv4{198, 18, 0, 1}));
  EXPECT_FALSE(dns.hostname_for(Ipv4{8, 8, 8, 8}));
}

TEST(NetSyntheticDns, PerHostTableIsBoundedLeastRecentlyUsedFirst) {
  SyntheticDns dns(SyntheticHostMapping::PerHost, layout(), 3);
  Ipv4 a = as_ipv4(ask(dns, {"a", "test"}).rdata.at(0));
  ask(dns, {"b", "test"});
  ask(dns, {"c", "test"});
  ask(dns, {"a", "test"});  // a is now the most recent
  ask(dns, {"d", "test"});  // evicts b
  EXPECT_EQ(dns.mapped_names(), 3u);
  EXPECT_EQ(dns.hostname_for(a), "a.test");
  EXPECT_FALSE(dns.address_of("b.test"));
  EXPECT_TRUE(dns.address_of("d.test"));
  // A flood of unique names (a tunnelling attempt) never grows the table.
  for (int i = 0; i < 1000; ++i) ask(dns, {"x" + std::to_string(i), std::string(63, 'q'), "evil", "test"});
  EXPECT_EQ(dns.mapped_names(), 3u);
}

TEST(NetSyntheticDns, OnlyARecordsAreSynthesised) {
  SyntheticDns dns(SyntheticHostMapping::Single, layout());
  auto aaaa = ask(dns, {"example", "com"}, kDnsTypeAaaa);
  EXPECT_EQ(aaaa.rcode, 0);
  EXPECT_TRUE(aaaa.rdata.empty());  // NODATA: clients fall back to IPv4 at once
  auto txt = ask(dns, {"example", "com"}, 16);
  EXPECT_EQ(txt.rcode, 0);
  EXPECT_TRUE(txt.rdata.empty());
  auto chaos = ask(dns, {"version", "bind"}, 16, 3);
  EXPECT_EQ(chaos.rcode, static_cast<std::uint8_t>(DnsRcode::Refused));
}

TEST(NetSyntheticDns, LocalhostIsLoopback) {
  SyntheticDns dns(SyntheticHostMapping::PerHost, layout());
  EXPECT_EQ(as_ipv4(ask(dns, {"localhost"}).rdata.at(0)), kIpv4Loopback);
  EXPECT_EQ(as_ipv4(ask(dns, {"app", "localhost"}).rdata.at(0)), kIpv4Loopback);
  auto v6 = ask(dns, {"localhost"}, kDnsTypeAaaa);
  ASSERT_EQ(v6.rdata.size(), 1u);
  EXPECT_EQ(v6.rdata[0].back(), 1);
  EXPECT_EQ(dns.mapped_names(), 0u);
  EXPECT_NE(as_ipv4(ask(dns, {"notlocalhost"}).rdata.at(0)), kIpv4Loopback);
}
