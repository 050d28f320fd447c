// Control-channel messages for running commands in the guest (hello,
// config, exec and its streams). Shared verbatim by the host and the static
// guest agent; header-only. Framing is in wire.h; the file, mount and
// session messages have headers of their own, included here so that a
// dispatcher over every frame type needs one include.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proto/file_messages.h"
#include "proto/mount_messages.h"
#include "proto/session_messages.h"
#include "proto/wire.h"

namespace gondolin::proto {

struct Hello {
  std::uint32_t agent_version = 0;  // kProtocolVersion of the agent
  std::uint64_t uptime_at_start_ns = 0;  // kernel boot time until the agent ran
  std::uint64_t init_duration_ns = 0;    // agent's own boot work
  std::string kernel_release;
  std::string boot_report;  // phase timings, e.g. "modules=0.310s root-device=0.002s"
  std::string init_extra_error;  // the image's init_extra failed: how (empty: ran fine or none)

  void encode(PayloadWriter& w) const {
    w.u32(agent_version);
    w.u64(uptime_at_start_ns);
    w.u64(init_duration_ns);
    w.bytes(kernel_release);
    w.bytes(boot_report);
    w.bytes(init_extra_error);
  }
  static std::optional<Hello> decode(PayloadReader& r) {
    Hello h;
    h.agent_version = r.u32();
    h.uptime_at_start_ns = r.u64();
    h.init_duration_ns = r.u64();
    h.kernel_release = r.c_string(256);
    h.boot_report = r.c_string(1024);
    h.init_extra_error = r.c_string(1024);
    if (!r.at_end()) return std::nullopt;
    return h;
  }
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

  void encode(PayloadWriter& w) const {
    w.u64(realtime_ns);
    w.bytes(entropy);
    w.bytes(hostname);
    w.bytes(mac);
    w.bytes(machine_id);
  }
  static std::optional<Config> decode(PayloadReader& r) {
    Config c;
    c.realtime_ns = r.u64();
    c.entropy = r.bytes(4096);
    c.hostname = r.c_string(64);
    c.mac = r.bytes(6);
    c.machine_id = r.c_string(32);
    if (!r.at_end() || (!c.mac.empty() && c.mac.size() != 6)) return std::nullopt;
    if (!c.machine_id.empty() && c.machine_id.size() != 32) return std::nullopt;
    for (char ch : c.machine_id)
      if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return std::nullopt;
    return c;
  }
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

  void encode(PayloadWriter& w) const {
    w.strings(argv);
    w.strings(env);
    w.bytes(cwd);
    w.u32(flags);
    w.u16(rows);
    w.u16(cols);
    w.u32(uid);
    w.u32(gid);
  }
  static std::optional<ExecStart> decode(PayloadReader& r) {
    ExecStart e;
    e.argv = r.c_strings(kMaxArgs);
    e.env = r.c_strings(kMaxEnv);
    e.cwd = r.c_string(4096);
    e.flags = r.u32();
    e.rows = r.u16();
    e.cols = r.u16();
    e.uid = r.u32();
    e.gid = r.u32();
    if (!r.at_end() || e.argv.empty() || (e.flags & ~kExecKnownFlags) != 0) return std::nullopt;
    for (const auto& kv : e.env)
      if (kv.empty() || kv.front() == '=' || kv.find('=') == std::string::npos) return std::nullopt;
    return e;
  }
};

struct ExecStarted {
  std::int32_t pid = 0;
  void encode(PayloadWriter& w) const { w.i32(pid); }
  static std::optional<ExecStarted> decode(PayloadReader& r) {
    ExecStarted s;
    s.pid = r.i32();
    if (!r.at_end()) return std::nullopt;
    return s;
  }
};

struct CreditGrant {
  std::uint32_t bytes = 0;
  void encode(PayloadWriter& w) const { w.u32(bytes); }
  static std::optional<CreditGrant> decode(PayloadReader& r) {
    CreditGrant c;
    c.bytes = r.u32();
    if (!r.at_end() || c.bytes == 0 || c.bytes > kInitialWindow) return std::nullopt;
    return c;
  }
};

struct Resize {
  std::uint16_t rows = 0;
  std::uint16_t cols = 0;
  void encode(PayloadWriter& w) const {
    w.u16(rows);
    w.u16(cols);
  }
  static std::optional<Resize> decode(PayloadReader& r) {
    Resize z;
    z.rows = r.u16();
    z.cols = r.u16();
    if (!r.at_end()) return std::nullopt;
    return z;
  }
};

struct SignalRequest {
  std::int32_t signo = 0;
  void encode(PayloadWriter& w) const { w.i32(signo); }
  static std::optional<SignalRequest> decode(PayloadReader& r) {
    SignalRequest s;
    s.signo = r.i32();
    if (!r.at_end() || s.signo <= 0 || s.signo > 64) return std::nullopt;
    return s;
  }
};

struct ExitStatusMsg {
  std::int32_t exit_code = 0;  // valid when signal == 0
  std::int32_t signal = 0;     // terminating signal, 0 if it exited normally
  void encode(PayloadWriter& w) const {
    w.i32(exit_code);
    w.i32(signal);
  }
  static std::optional<ExitStatusMsg> decode(PayloadReader& r) {
    ExitStatusMsg e;
    e.exit_code = r.i32();
    e.signal = r.i32();
    if (!r.at_end() || e.exit_code < 0 || e.exit_code > 255 || e.signal < 0 || e.signal > 64)
      return std::nullopt;
    return e;
  }
};

// Why a request failed. `stage` says which step; `error_number` is the guest errno.
enum class ErrorStage : std::uint8_t { Protocol = 1, Exec = 2, Cwd = 3, Spawn = 4, User = 5 };

struct ErrorMsg {
  ErrorStage stage = ErrorStage::Protocol;
  std::int32_t error_number = 0;
  std::string message;
  void encode(PayloadWriter& w) const {
    w.u8(static_cast<std::uint8_t>(stage));
    w.i32(error_number);
    w.bytes(message);
  }
  static std::optional<ErrorMsg> decode(PayloadReader& r) {
    ErrorMsg e;
    std::uint8_t stage = r.u8();
    e.error_number = r.i32();
    e.message = r.bytes(1024);
    if (!r.at_end() || stage < 1 || stage > 5) return std::nullopt;
    e.stage = static_cast<ErrorStage>(stage);
    return e;
  }
};

}  // namespace gondolin::proto
