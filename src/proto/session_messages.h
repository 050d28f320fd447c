// Messages on the session socket between gondolin processes of one user
// (snapshot, attach). Header-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/wire.h"

namespace gondolin::proto {

// ---- Session socket (between gondolin processes of one user) -----------------

struct SessionSnapshotRequest {
  std::string output_dir;        // empty: the snapshot store
  std::uint8_t keep_running = 0;  // 1: the session continues after the snapshot
  void encode(PayloadWriter& w) const {
    w.bytes(output_dir);
    w.u8(keep_running);
  }
  static std::optional<SessionSnapshotRequest> decode(PayloadReader& r) {
    SessionSnapshotRequest q;
    q.output_dir = r.c_string(kMaxPathLength);
    q.keep_running = r.u8();
    if (!r.at_end() || q.keep_running > 1) return std::nullopt;
    return q;
  }
};

struct SessionSnapshotDoneMsg {
  std::string id;
  std::string dir;
  void encode(PayloadWriter& w) const {
    w.bytes(id);
    w.bytes(dir);
  }
  static std::optional<SessionSnapshotDoneMsg> decode(PayloadReader& r) {
    SessionSnapshotDoneMsg d;
    d.id = r.c_string(64);
    d.dir = r.c_string(kMaxPathLength);
    if (!r.at_end()) return std::nullopt;
    return d;
  }
};

struct AttachExitMsg {
  std::int32_t exit_code = 0;
  std::int32_t signal = 0;
  std::uint8_t timed_out = 0;
  std::string start_error;
  void encode(PayloadWriter& w) const {
    w.i32(exit_code);
    w.i32(signal);
    w.u8(timed_out);
    w.bytes(start_error);
  }
  static std::optional<AttachExitMsg> decode(PayloadReader& r) {
    AttachExitMsg e;
    e.exit_code = r.i32();
    e.signal = r.i32();
    e.timed_out = r.u8();
    e.start_error = r.bytes(4096);
    if (!r.at_end() || e.exit_code < 0 || e.exit_code > 255 || e.signal < 0 || e.signal > 64) return std::nullopt;
    return e;
  }
};

}  // namespace gondolin::proto
