// The flow table: handshake accounting and refusal-becomes-reset.
#include <gtest/gtest.h>

#include <vector>

#include "net/tcp_flow_table.h"

using namespace gondolin::net;

namespace {

using Clock = TcpFlowTable::Clock;

TcpSegment seg(std::uint8_t flags, std::size_t payload = 0) {
  TcpSegment s;
  s.flags = flags;
  s.payload_length = payload;
  return s;
}

struct Fixture {
  std::vector<FlowKey> ended;
  TcpFlowTable table;
  explicit Fixture(TcpFlowTable::Limits limits = {})
      : table(limits, [this](const FlowKey& k) { ended.push_back(k); }) {}
};

const FlowKey kKey{40000, Ipv4{198, 18, 0, 1}, 80};

}  // namespace

TEST(NetFlowTable, HandshakeThenAcceptOpensTheFlowOnce) {
  Fixture f;
  auto now = Clock::now();
  EXPECT_EQ(f.table.on_guest_syn(kKey, now), TcpFlowTable::SynVerdict::New);
  EXPECT_EQ(f.table.on_guest_syn(kKey, now), TcpFlowTable::SynVerdict::Retransmit);
  EXPECT_TRUE(f.table.handshaking(kKey));
  EXPECT_EQ(f.table.handshakes(), 1u);
  std::uint64_t id = f.table.on_accepted(kKey, now);
  EXPECT_NE(id, 0u);
  EXPECT_EQ(f.table.on_accepted(kKey, now), 0u);
  EXPECT_FALSE(f.table.handshaking(kKey));
  EXPECT_EQ(f.table.handshakes(), 0u);
  ASSERT_EQ(f.ended.size(), 1u);
  EXPECT_EQ(f.ended[0].packed(), kKey.packed());
}

TEST(NetFlowTable, ClosingWithoutAnswerBecomesReset) {
  Fixture f;
  auto now = Clock::now();
  f.table.on_guest_syn(kKey, now);
  f.table.on_host_segment(kKey, seg(kTcpSyn | kTcpAck), now);  // slirp's SYN-ACK
  f.table.on_accepted(kKey, now);
  f.table.on_guest_segment(kKey, seg(kTcpAck | kTcpPsh, 70), now);  // the request
  EXPECT_EQ(f.table.on_host_segment(kKey, seg(kTcpAck), now), TcpFlowTable::HostAction::Forward);
  EXPECT_EQ(f.table.on_host_segment(kKey, seg(kTcpFin | kTcpAck), now), TcpFlowTable::HostAction::ResetInstead);
  EXPECT_EQ(f.table.size(), 0u);
}

TEST(NetFlowTable, ClosingAfterAnAnswerIsAnOrderlyClose) {
  Fixture f;
  auto now = Clock::now();
  f.table.on_guest_syn(kKey, now);
  f.table.on_accepted(kKey, now);
  EXPECT_EQ(f.table.on_host_segment(kKey, seg(kTcpAck | kTcpPsh, 200), now), TcpFlowTable::HostAction::Forward);
  EXPECT_EQ(f.table.on_host_segment(kKey, seg(kTcpFin | kTcpAck), now), TcpFlowTable::HostAction::Forward);
  f.table.on_guest_segment(kKey, seg(kTcpFin | kTcpAck), now);
  EXPECT_EQ(f.table.size(), 0u);  // both sides closed
}

TEST(NetFlowTable, LimitsHandshakesAndFlows) {
  TcpFlowTable::Limits limits;
  limits.max_handshakes = 2;
  limits.max_flows = 3;
  Fixture f(limits);
  auto now = Clock::now();
  auto key = [](std::uint16_t port) { return FlowKey{port, Ipv4{1, 2, 3, 4}, 443}; };
  EXPECT_EQ(f.table.on_guest_syn(key(1), now), TcpFlowTable::SynVerdict::New);
  EXPECT_EQ(f.table.on_guest_syn(key(2), now), TcpFlowTable::SynVerdict::New);
  EXPECT_EQ(f.table.on_guest_syn(key(3), now), TcpFlowTable::SynVerdict::Refuse);
  f.table.on_accepted(key(1), now);
  EXPECT_EQ(f.table.on_guest_syn(key(3), now), TcpFlowTable::SynVerdict::New);
  f.table.on_accepted(key(2), now);
  EXPECT_EQ(f.table.on_guest_syn(key(4), now), TcpFlowTable::SynVerdict::Refuse);  // 3 flows
}

TEST(NetFlowTable, ResetsAndTimeoutsEndHandshakes) {
  Fixture f;
  auto now = Clock::now();
  f.table.on_guest_syn(kKey, now);
  f.table.on_guest_segment(kKey, seg(kTcpRst), now);
  EXPECT_EQ(f.table.size(), 0u);
  EXPECT_EQ(f.ended.size(), 1u);

  f.table.on_guest_syn(kKey, now);
  f.table.expire(now + std::chrono::seconds(30));
  EXPECT_EQ(f.table.size(), 1u);
  f.table.expire(now + std::chrono::seconds(91));
  EXPECT_EQ(f.table.size(), 0u);
  EXPECT_EQ(f.ended.size(), 2u);
}
