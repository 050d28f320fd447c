// Bytes from a hostile guest on the control port: the decoder and every
// message decoder must bound and reject, never crash or over-read.
#include <cstddef>
#include <cstdint>

#include "proto/control_protocol.h"
#include "proto/file_messages.h"
#include "proto/session_messages.h"

using namespace gondolin::proto;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FrameDecoder decoder;
  std::size_t off = 0;
  while (off < size) {
    std::size_t used = decoder.feed(data + off, size - off);
    off += used;
    if (decoder.error() != HeaderError::None) break;
    if (!decoder.has_frame()) {
      if (used == 0) break;
      continue;
    }
    auto f = decoder.take();
    PayloadReader r(f.payload.data(), f.payload.size());
    switch (f.header.type) {
      case FrameType::Hello: (void)Hello::decode(r); break;
      case FrameType::Config: (void)Config::decode(r); break;
      case FrameType::ExecStart: (void)ExecStart::decode(r); break;
      case FrameType::ExecStarted: (void)ExecStarted::decode(r); break;
      case FrameType::Credit: (void)CreditGrant::decode(r); break;
      case FrameType::Resize: (void)Resize::decode(r); break;
      case FrameType::Signal: (void)SignalRequest::decode(r); break;
      case FrameType::Exit: (void)ExitStatusMsg::decode(r); break;
      case FrameType::Error: (void)ErrorMsg::decode(r); break;
      case FrameType::FileOp: (void)FileOp::decode(r); break;
      case FrameType::FileResult: {
        auto res = FileResult::decode(r);
        if (res) (void)decode_dir_entries(res->data);
        break;
      }
      case FrameType::SessionSnapshot: (void)SessionSnapshotRequest::decode(r); break;
      case FrameType::SessionSnapshotDone: (void)SessionSnapshotDoneMsg::decode(r); break;
      case FrameType::AttachExit: (void)AttachExitMsg::decode(r); break;
      default: break;
    }
  }
  return 0;
}
