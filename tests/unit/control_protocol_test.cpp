#include <gtest/gtest.h>

#include "proto/control_protocol.h"
#include "proto/file_messages.h"

using namespace gondolin::proto;

namespace {

FrameDecoder::Frame decode_one(const std::vector<std::uint8_t>& bytes) {
  FrameDecoder d;
  std::size_t used = d.feed(bytes.data(), bytes.size());
  EXPECT_EQ(used, bytes.size());
  EXPECT_TRUE(d.has_frame());
  return d.take();
}

}  // namespace

TEST(ControlProtocol, ExecStartRoundTrips) {
  ExecStart e;
  e.argv = {"/bin/sh", "-c", "echo hi"};
  e.env = {"A=1", "B="};
  e.cwd = "/tmp";
  e.flags = kExecFlagPty | kExecFlagStdin;
  e.rows = 40;
  e.cols = 120;
  auto frame = decode_one(make_frame(FrameType::ExecStart, 7, e));
  EXPECT_EQ(frame.header.type, FrameType::ExecStart);
  EXPECT_EQ(frame.header.stream_id, 7u);
  PayloadReader r(frame.payload.data(), frame.payload.size());
  auto back = ExecStart::decode(r);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->argv, e.argv);
  EXPECT_EQ(back->env, e.env);
  EXPECT_EQ(back->cwd, "/tmp");
  EXPECT_EQ(back->rows, 40);
  EXPECT_EQ(back->cols, 120);
}

TEST(ControlProtocol, DecoderHandlesBytesOneAtATime) {
  auto bytes = make_frame(FrameType::Stdout, 3, reinterpret_cast<const std::uint8_t*>("hello"), 5);
  FrameDecoder d;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    ASSERT_FALSE(d.has_frame());
    ASSERT_EQ(d.feed(&bytes[i], 1), 1u);
  }
  ASSERT_TRUE(d.has_frame());
  auto f = d.take();
  EXPECT_EQ(std::string(f.payload.begin(), f.payload.end()), "hello");
}

TEST(ControlProtocol, DecoderStopsAfterEachFrame) {
  auto a = make_empty_frame(FrameType::StdinEof, 1);
  auto b = make_empty_frame(FrameType::StdinEof, 2);
  a.insert(a.end(), b.begin(), b.end());
  FrameDecoder d;
  std::size_t used = d.feed(a.data(), a.size());
  EXPECT_EQ(used, kHeaderSize);
  EXPECT_EQ(d.take().header.stream_id, 1u);
  used = d.feed(a.data() + used, a.size() - used);
  EXPECT_EQ(d.take().header.stream_id, 2u);
}

TEST(ControlProtocol, RejectsLyingLength) {
  FrameHeader h{kMaxPayload + 1, kProtocolVersion, FrameType::Stdout, 1};
  auto hdr = encode_header(h);
  FrameDecoder d;
  d.feed(hdr.data(), hdr.size());
  EXPECT_EQ(d.error(), HeaderError::TooLarge);
  EXPECT_FALSE(d.has_frame());
}

TEST(ControlProtocol, RejectsBadVersionTypeAndReservedBits) {
  auto frame = make_empty_frame(FrameType::Exit, 1);
  auto bad_version = frame;
  bad_version[4] = 99;
  FrameHeader h;
  EXPECT_EQ(decode_header(bad_version.data(), h), HeaderError::BadVersion);
  auto bad_type = frame;
  bad_type[5] = 200;
  EXPECT_EQ(decode_header(bad_type.data(), h), HeaderError::BadType);
  auto bad_reserved = frame;
  bad_reserved[6] = 1;
  EXPECT_EQ(decode_header(bad_reserved.data(), h), HeaderError::BadReserved);
}

TEST(ControlProtocol, ReaderRefusesTruncatedAndOversizedFields) {
  PayloadWriter w;
  w.u32(1000);  // claims a 1000-byte string
  w.u8('x');
  PayloadReader r(w.data().data(), w.data().size());
  r.bytes();
  EXPECT_FALSE(r.ok());

  PayloadWriter big;
  big.u32(kMaxArgs + 1);  // too many argv entries
  PayloadReader r2(big.data().data(), big.data().size());
  r2.c_strings(kMaxArgs);
  EXPECT_FALSE(r2.ok());
}

TEST(ControlProtocol, CountLargerThanPayloadIsALie) {
  PayloadWriter w;
  w.u32(1000);  // 1000 strings in 4 bytes is impossible
  PayloadReader r(w.data().data(), w.data().size());
  r.c_strings(kMaxArgs);
  EXPECT_FALSE(r.ok());
}

TEST(ControlProtocol, CStringsMayNotHideNul) {
  PayloadWriter w;
  w.bytes(std::string("a\0b", 3));
  PayloadReader r(w.data().data(), w.data().size());
  r.c_string();
  EXPECT_FALSE(r.ok());
}

TEST(ControlProtocol, ExecStartValidation) {
  ExecStart e;
  e.argv = {};
  PayloadWriter w;
  e.encode(w);
  PayloadReader r(w.data().data(), w.data().size());
  EXPECT_FALSE(ExecStart::decode(r)) << "empty argv";

  ExecStart bad_env;
  bad_env.argv = {"x"};
  bad_env.env = {"NOEQUALS"};
  PayloadWriter w2;
  bad_env.encode(w2);
  PayloadReader r2(w2.data().data(), w2.data().size());
  EXPECT_FALSE(ExecStart::decode(r2)) << "env entry without '='";

  ExecStart bad_flags;
  bad_flags.argv = {"x"};
  bad_flags.flags = 1u << 30;
  PayloadWriter w3;
  bad_flags.encode(w3);
  PayloadReader r3(w3.data().data(), w3.data().size());
  EXPECT_FALSE(ExecStart::decode(r3)) << "unknown flag";
}

TEST(ControlProtocol, ExitStatusBounds) {
  for (auto [code, sig, ok] :
       {std::tuple{0, 0, true}, {255, 0, true}, {256, 0, false}, {-1, 0, false}, {0, 65, false}}) {
    PayloadWriter w;
    w.i32(code);
    w.i32(sig);
    PayloadReader r(w.data().data(), w.data().size());
    EXPECT_EQ(ExitStatusMsg::decode(r).has_value(), ok) << code << "/" << sig;
  }
}

TEST(ControlProtocol, CreditMustBeWithinWindow) {
  for (auto [bytes, ok] : {std::pair{1u, true}, {kInitialWindow, true}, {0u, false}, {kInitialWindow + 1, false}}) {
    PayloadWriter w;
    w.u32(bytes);
    PayloadReader r(w.data().data(), w.data().size());
    EXPECT_EQ(CreditGrant::decode(r).has_value(), ok) << bytes;
  }
}

TEST(ControlProtocol, FileOpValidation) {
  FileOp op;
  op.op = FileOpKind::Write;
  op.path = "relative/path";
  PayloadWriter w;
  op.encode(w);
  PayloadReader r(w.data().data(), w.data().size());
  EXPECT_FALSE(FileOp::decode(r)) << "relative path";

  FileOp rename;
  rename.op = FileOpKind::Rename;
  rename.path = "/a";
  rename.path2 = "/b";
  PayloadWriter w2;
  rename.encode(w2);
  PayloadReader r2(w2.data().data(), w2.data().size());
  auto back = FileOp::decode(r2);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->path2, "/b");
}

TEST(ControlProtocol, DirEntriesRejectSlashes) {
  auto good = encode_dir_entries({{"a", 0}, {"b", 0}});
  ASSERT_TRUE(decode_dir_entries(good));
  EXPECT_EQ(decode_dir_entries(good)->size(), 2u);
  auto bad = encode_dir_entries({{"../x", 0}});
  EXPECT_FALSE(decode_dir_entries(bad));
}
