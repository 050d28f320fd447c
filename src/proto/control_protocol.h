// Control-channel messages for running commands in the guest (hello,
// config, exec and its streams). Shared verbatim by the host and the static
// guest agent; header-only. Framing is in wire.h, the field-list scheme of
// every message in message_fields.h; the file, mount and session messages
// have headers of their own, included only where they are used (the guest
// never compiles the session messages).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/message_fields.h"
#include "proto/wire.h"

namespace gondolin::proto {

struct Hello {
  std::uint32_t agent_version = 0;       // kProtocolVersion of the agent
  std::uint64_t uptime_at_start_ns = 0;  // kernel boot time until the agent ran
  std::uint64_t init_duration_ns = 0;    // agent's own boot work
  std::string kernel_release;
  std::string boot_report;       // phase timings, e.g. "modules=0.310s root-device=0.002s"
  std::string init_extra_error;  // the image's init_extra failed: how (empty: ran fine or none)

  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.u32(m.agent_version);
    f.u64(m.uptime_at_start_ns);
    f.u64(m.init_duration_ns);
    f.text(m.kernel_release, 256);
    f.text(m.boot_report, 1024);
    f.text(m.init_extra_error, 1024);
  }
  GONDOLIN_WIRE_MESSAGE(Hello)
};

struct Config {
  std::uint64_t realtime_ns = 0;  // host wall clock; the guest sets its clock from it
  std::string entropy;            // seeds the guest RNG
  std::string hostname;
  // Per-start identity (a VM resumed from a boot template must not be its
  // twin): eth0's MAC address from now on (6 bytes; empty: keep it), and
  // /etc/machine-id (32 lowercase hex digits; empty: keep it).
  std::string mac;
  std::string machine_id;

  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.u64(m.realtime_ns);
    f.blob(m.entropy, 4096);
    f.text(m.hostname, 64);
    f.blob(m.mac, 6);
    f.text(m.machine_id, 32);
  }
  bool valid() const {
    if (!mac.empty() && mac.size() != 6) return false;
    if (!machine_id.empty() && machine_id.size() != 32) return false;
    for (char ch : machine_id)
      if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
    return true;
  }
  GONDOLIN_WIRE_MESSAGE(Config)
};

inline constexpr std::uint32_t kExecFlagPty = 1u << 0;
inline constexpr std::uint32_t kExecFlagStdin = 1u << 1;  // otherwise stdin is /dev/null
inline constexpr std::uint32_t kExecFlagUser = 1u << 2;   // run as uid:gid, otherwise as root
inline constexpr std::uint32_t kExecKnownFlags = kExecFlagPty | kExecFlagStdin | kExecFlagUser;

struct ExecStart {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // KEY=VALUE, replaces the agent's default env entries
  std::string cwd;               // empty: "/"
  std::uint32_t flags = 0;
  std::uint16_t rows = 24;
  std::uint16_t cols = 80;
  std::uint32_t uid = 0, gid = 0;  // with kExecFlagUser

  void run_as(std::uint32_t user, std::uint32_t group) {
    flags |= kExecFlagUser;
    uid = user;
    gid = group;
  }

  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.texts(m.argv, kMaxArgs);
    f.texts(m.env, kMaxEnv);
    f.text(m.cwd, 4096);
    f.u32(m.flags);
    f.u16(m.rows);
    f.u16(m.cols);
    f.u32(m.uid);
    f.u32(m.gid);
  }
  bool valid() const {
    if (argv.empty() || (flags & ~kExecKnownFlags) != 0) return false;
    for (const auto& kv : env)
      if (kv.empty() || kv.front() == '=' || kv.find('=') == std::string::npos) return false;
    return true;
  }
  GONDOLIN_WIRE_MESSAGE(ExecStart)
};

struct ExecStarted {
  std::int32_t pid = 0;
  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.i32(m.pid);
  }
  GONDOLIN_WIRE_MESSAGE(ExecStarted)
};

struct CreditGrant {
  std::uint32_t bytes = 0;
  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.u32(m.bytes);
  }
  bool valid() const { return bytes != 0 && bytes <= kInitialWindow; }
  GONDOLIN_WIRE_MESSAGE(CreditGrant)
};

struct Resize {
  std::uint16_t rows = 0;
  std::uint16_t cols = 0;
  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.u16(m.rows);
    f.u16(m.cols);
  }
  GONDOLIN_WIRE_MESSAGE(Resize)
};

struct SignalRequest {
  std::int32_t signo = 0;
  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.i32(m.signo);
  }
  bool valid() const { return signo > 0 && signo <= 64; }
  GONDOLIN_WIRE_MESSAGE(SignalRequest)
};

struct ExitStatusMsg {
  std::int32_t exit_code = 0;  // valid when signal == 0
  std::int32_t signal = 0;     // terminating signal, 0 if it exited normally
  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.i32(m.exit_code);
    f.i32(m.signal);
  }
  bool valid() const { return exit_code >= 0 && exit_code <= 255 && signal >= 0 && signal <= 64; }
  GONDOLIN_WIRE_MESSAGE(ExitStatusMsg)
};

// Why a request failed. `stage` says which step; `error_number` is the guest errno.
enum class ErrorStage : std::uint8_t { Protocol = 1, Exec = 2, Cwd = 3, Spawn = 4, User = 5 };

struct ErrorMsg {
  ErrorStage stage = ErrorStage::Protocol;
  std::int32_t error_number = 0;
  std::string message;
  template <class Msg, class Fields>
  static void fields(Msg& m, Fields& f) {
    f.enum_u8(m.stage);
    f.i32(m.error_number);
    f.blob(m.message, 1024);
  }
  bool valid() const {
    const auto s = static_cast<std::uint8_t>(stage);
    return s >= 1 && s <= 5;
  }
  GONDOLIN_WIRE_MESSAGE(ErrorMsg)
};

}  // namespace gondolin::proto
