#include "net/tcp_flow_table.h"

namespace gondolin::net {

TcpFlowTable::TcpFlowTable(Limits limits, HandshakeEnd on_handshake_end)
    : limits_(limits), on_handshake_end_(std::move(on_handshake_end)) {}

void TcpFlowTable::erase(std::unordered_map<std::uint64_t, Flow>::iterator it) {
  const bool was_handshake = !it->second.open;
  const FlowKey key = it->second.key;
  flows_.erase(it);
  if (was_handshake) {
    --handshakes_;
    if (on_handshake_end_) on_handshake_end_(key);
  }
}

TcpFlowTable::SynVerdict TcpFlowTable::on_guest_syn(const FlowKey& key, Clock::time_point now) {
  auto it = flows_.find(key.packed());
  if (it != flows_.end()) {
    if (!it->second.open) {
      it->second.last_seen = now;
      return SynVerdict::Retransmit;
    }
    // The port is being reused; whatever slirp makes of it, the old record is over.
    erase(it);
  }
  if (handshakes_ >= limits_.max_handshakes || flows_.size() >= limits_.max_flows) return SynVerdict::Refuse;
  Flow f;
  f.key = key;
  f.last_seen = now;
  flows_.emplace(key.packed(), f);
  ++handshakes_;
  return SynVerdict::New;
}

bool TcpFlowTable::handshaking(const FlowKey& key) const {
  auto it = flows_.find(key.packed());
  return it != flows_.end() && !it->second.open;
}

std::uint64_t TcpFlowTable::on_accepted(const FlowKey& key, Clock::time_point now) {
  auto it = flows_.find(key.packed());
  if (it == flows_.end() || it->second.open) return 0;
  it->second.open = true;
  it->second.id = next_id_++;
  it->second.last_seen = now;
  --handshakes_;
  if (on_handshake_end_) on_handshake_end_(key);
  return it->second.id;
}

void TcpFlowTable::forget(const FlowKey& key) {
  auto it = flows_.find(key.packed());
  if (it != flows_.end()) erase(it);
}

void TcpFlowTable::on_guest_segment(const FlowKey& key, const TcpSegment& s, Clock::time_point now) {
  auto it = flows_.find(key.packed());
  if (it == flows_.end()) return;
  if (s.has(kTcpRst)) return erase(it);
  it->second.last_seen = now;
  if (s.has(kTcpFin)) it->second.guest_fin = true;
  if (it->second.guest_fin && it->second.host_fin) erase(it);
}

TcpFlowTable::HostAction TcpFlowTable::on_host_segment(const FlowKey& key, const TcpSegment& s, Clock::time_point now) {
  auto it = flows_.find(key.packed());
  if (it == flows_.end()) return HostAction::Forward;
  Flow& f = it->second;
  f.last_seen = now;
  if (s.has(kTcpRst)) {
    erase(it);
    return HostAction::Forward;
  }
  if (s.payload_length > 0) f.host_sent_data = true;
  if (s.has(kTcpFin)) {
    if (f.open && !f.host_sent_data) {
      erase(it);
      return HostAction::ResetInstead;
    }
    f.host_fin = true;
  }
  // Both directions closed: slirp finishes the handshake of the close by itself.
  if (f.guest_fin && f.host_fin) erase(it);
  return HostAction::Forward;
}

void TcpFlowTable::expire(Clock::time_point now) {
  for (auto it = flows_.begin(); it != flows_.end();) {
    auto next = std::next(it);
    const auto age = now - it->second.last_seen;
    if ((!it->second.open && age > limits_.handshake_timeout) || age > limits_.idle_forget) erase(it);
    it = next;
  }
}

}  // namespace gondolin::net
