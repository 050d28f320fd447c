// The stack's record of guest TCP flows, kept beside libslirp's own state:
// which handshakes are in flight (so the flow socket slirp opens can be
// attributed to exactly one of them), and whether the host side has sent the
// guest anything yet. A flow egress closes without a single byte of answer
// is a refusal, and the guest sees a reset rather than an orderly close.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>

#include "net/ip_address.h"
#include "net/tcp_segment.h"

namespace gondolin::net {

struct FlowKey {
  std::uint16_t guest_port = 0;
  Ipv4 dst{};
  std::uint16_t dst_port = 0;
  std::uint64_t packed() const {
    return (std::uint64_t{to_u32(dst)} << 32) | (std::uint64_t{dst_port} << 16) | guest_port;
  }
};

class TcpFlowTable {
 public:
  using Clock = std::chrono::steady_clock;
  struct Limits {
    std::size_t max_handshakes = 256;  // SYNs beyond this are refused (SYN floods stay cheap)
    // Each open flow costs the host ~40 KiB (slirp socket buffers, our socket,
    // dispatcher state): 3000 at once measured +118 MiB RSS, so 1024 bounds a
    // flood to ~40 MiB while leaving room for any real workload.
    std::size_t max_flows = 1024;
    // Slirp gives up on a handshake after 75 s; ours must not end sooner.
    std::chrono::seconds handshake_timeout{90};
    std::chrono::seconds idle_forget{900};
  };
  // Called when a handshake stops being in flight (accepted, reset, expired).
  using HandshakeEnd = std::function<void(const FlowKey&)>;

  TcpFlowTable(Limits limits, HandshakeEnd on_handshake_end);

  enum class SynVerdict { New, Retransmit, Refuse };
  // A guest SYN (without ACK) for `key`, already checked by the caller's
  // destination rules. New: a handshake starts; Refuse: answer with a reset.
  SynVerdict on_guest_syn(const FlowKey& key, Clock::time_point now);
  bool handshaking(const FlowKey& key) const;
  // The handshake's flow socket arrived: the flow is open. Returns its id.
  std::uint64_t on_accepted(const FlowKey& key, Clock::time_point now);
  // The handshake cannot go ahead after all (slirp would not take it).
  void forget(const FlowKey& key);
  // Any other guest segment of the flow.
  void on_guest_segment(const FlowKey& key, const TcpSegment& s, Clock::time_point now);

  enum class HostAction { Forward, ResetInstead };
  // A segment slirp sends the guest. ResetInstead: the flow closed before
  // the host said anything; send resets to both sides instead of this FIN.
  HostAction on_host_segment(const FlowKey& key, const TcpSegment& s, Clock::time_point now);

  // Drops expired handshakes and long-idle records.
  void expire(Clock::time_point now);
  std::size_t size() const { return flows_.size(); }
  std::size_t handshakes() const { return handshakes_; }

 private:
  struct Flow {
    FlowKey key;
    std::uint64_t id = 0;
    bool open = false;  // accepted; false while handshaking
    bool host_sent_data = false;
    bool guest_fin = false, host_fin = false;
    Clock::time_point last_seen;
  };
  void erase(std::unordered_map<std::uint64_t, Flow>::iterator it);

  Limits limits_;
  HandshakeEnd on_handshake_end_;
  std::unordered_map<std::uint64_t, Flow> flows_;
  std::size_t handshakes_ = 0;
  std::uint64_t next_id_ = 1;
};

}  // namespace gondolin::net
