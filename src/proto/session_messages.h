// Messages on the session socket between gondolin processes of one user
// (snapshot, attach, live policy). Header-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proto/file_messages.h"  // kMaxPathLength
#include "proto/message_fields.h"
#include "proto/wire.h"

namespace gondolin::proto {

// ---- Session socket (between gondolin processes of one user) -----------------

struct SessionSnapshotRequest {
  std::string output_dir;         // empty: the snapshot store
  std::uint8_t keep_running = 0;  // 1: the session continues after the snapshot
  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.text(m.output_dir, kMaxPathLength);
    f.u8(m.keep_running);
  }
  bool valid() const { return keep_running <= 1; }
  GONDOLIN_WIRE_MESSAGE(SessionSnapshotRequest)
};

struct SessionSnapshotDoneMsg {
  std::string id;
  std::string dir;
  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.text(m.id, 64);
    f.text(m.dir, kMaxPathLength);
  }
  GONDOLIN_WIRE_MESSAGE(SessionSnapshotDoneMsg)
};

// SessionPolicy: `op` 0 asks for the policy as it stands; 1..4 is a
// gondolin::PolicyChange::Kind with its fields. The reply is
// SessionPolicyState (or Error naming what was wrong).
struct SessionPolicyRequest {
  std::uint8_t op = 0;
  std::string pattern;
  std::string secret_name;
  std::vector<std::string> hosts, methods, path_prefixes;
  std::string value;                                     // SetSecret only; never logged
  std::string placeholder_prefix, placeholder_alphabet;  // SetSecret: the placeholder's shape
  std::uint32_t placeholder_length = 0;
  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.u8(m.op);
    f.text(m.pattern, 1024);
    f.text(m.secret_name, 256);
    f.texts(m.hosts, 256);
    f.texts(m.methods, 64);
    f.texts(m.path_prefixes, 64);
    f.text(m.value, 64 * 1024);
    f.text(m.placeholder_prefix, 64);
    f.u32(m.placeholder_length);
    f.text(m.placeholder_alphabet, 256);
  }
  bool valid() const { return op <= 4 && placeholder_length <= 256; }
  GONDOLIN_WIRE_MESSAGE(SessionPolicyRequest)
};

// The policy as JSON (config/policy_state_json.h): the same text
// `gondolin policy ID show --json` prints.
struct SessionPolicyStateMsg {
  std::string json;
  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.text(m.json, kMaxStringLength);
  }
  GONDOLIN_WIRE_MESSAGE(SessionPolicyStateMsg)
};

// SessionSsh: no fields (a later version may add some).
struct SessionSshRequest {
  template <class Msg, class Fields>
  static void fields(Msg&, Fields&) {}
  GONDOLIN_WIRE_MESSAGE(SessionSshRequest)
};

// SessionSshAccess: what gondolin/guest_ssh.h's GuestSshAccess holds (the
// host is always 127.0.0.1).
struct SessionSshAccessMsg {
  std::uint16_t port = 0;
  std::string user;
  std::string identity_file;
  std::string known_hosts_file;
  std::string alias;
  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.u16(m.port);
    f.text(m.user, 64);
    f.text(m.identity_file, kMaxPathLength);
    f.text(m.known_hosts_file, kMaxPathLength);
    f.text(m.alias, 64);
  }
  bool valid() const { return port != 0 && !user.empty(); }
  GONDOLIN_WIRE_MESSAGE(SessionSshAccessMsg)
};

struct AttachExitMsg {
  std::int32_t exit_code = 0;
  std::int32_t signal = 0;
  std::uint8_t timed_out = 0;
  std::string start_error;
  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.i32(m.exit_code);
    f.i32(m.signal);
    f.u8(m.timed_out);
    f.blob(m.start_error, 4096);
  }
  bool valid() const { return exit_code >= 0 && exit_code <= 255 && signal >= 0 && signal <= 64; }
  GONDOLIN_WIRE_MESSAGE(AttachExitMsg)
};

}  // namespace gondolin::proto
