// What protocol a guest TCP flow speaks, judged by its first bytes alone.
// Pure, so it can be tested and fuzzed without sockets.
#pragma once

#include <cstddef>

#include "net/bytes.h"
#include "net/guest_flow.h"

namespace gondolin::net {

enum class PrefixVerdict { NeedMore, Http, Tls, Ssh, Other };

// The most bytes the dispatcher reads before it must decide.
constexpr std::size_t kMaxClassifyPrefix = 8192;

// NeedMore while the bytes so far could still start any of the protocols.
//   HTTP/1.x: method token, SP, request target (visible ASCII), SP, "HTTP/1." DIGIT
//   TLS:      a handshake record (0x16 0x03 0x00-0x04, length) holding a ClientHello
//   SSH:      "SSH-2.0-" (or the compatible "SSH-1.99-")
// A request line cut off by kMaxClassifyPrefix in its target still counts as HTTP
// (the HTTP layer answers an over-long target itself).
PrefixVerdict classify_prefix(Bytes prefix);

// The verdict once no more bytes will come (timeout, end of stream, size bound).
FlowKind final_kind(Bytes prefix);

const char* to_string(FlowKind kind);

}  // namespace gondolin::net
