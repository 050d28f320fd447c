// The host's side of the control channel against a peer that lies: a scripted
// "agent" on the other end of a socketpair sends crafted frames. Whatever it
// does, the host must end the VM's channel with a clear reason, fail pending
// calls, and never crash, hang or buffer without bound.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include "control/control_client.h"
#include "gondolin/exec.h"
#include "io_thread.h"

using namespace gondolin;
using proto::FrameType;

namespace {

class LyingAgent {
 public:
  template <typename F>
  auto run(F&& f) {
    return io_.run(std::forward<F>(f));
  }

  LyingAgent() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    peer_.reset(sv[1]);
    run([&] {
      auto channel = std::make_shared<control::ControlChannel>(io_.io(), UniqueFd(sv[0]));
      client_ = std::make_shared<control::ControlClient>(io_.io(), channel);
      client_->start([this](const proto::Hello&) { hello_.set_value(); },
                     [this](const std::string& why) { death_.set_value(why); });
    });
  }
  ~LyingAgent() {
    run([&] { client_.reset(); });
  }

  void send(const std::vector<std::uint8_t>& bytes) {
    ASSERT_EQ(::write(peer_.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void say_hello() {
    send(proto::make_frame(FrameType::Hello, 0, proto::Hello{proto::kProtocolVersion, 1, 1, "test", "", ""}));
    ASSERT_EQ(hello_.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  }
  std::shared_ptr<detail::ProcessState> start_exec() {
    proto::ExecStart req;
    req.argv = {"x"};
    return run([&] { return client_->start_exec(req, std::nullopt); });
  }
  // The reason the host gave up on the channel.
  std::string death() {
    auto f = death_.get_future();
    if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return "(still alive)";
    return f.get();
  }
  std::string failure_of(const std::shared_ptr<detail::ProcessState>& s) {
    std::lock_guard lock(s->mutex);
    return s->failure ? s->failure->what() : "(no failure)";
  }

 private:
  test_support::IoThread io_;
  UniqueFd peer_;
  std::shared_ptr<control::ControlClient> client_;
  std::promise<void> hello_;
  std::promise<std::string> death_;
};

}  // namespace

TEST(HostileControl, FrameThatLiesAboutItsLength) {
  LyingAgent a;
  a.say_hello();
  auto state = a.start_exec();
  auto header = proto::encode_header({0xfffffff0u, proto::kProtocolVersion, FrameType::Stdout, 1});
  a.send(std::vector<std::uint8_t>(header.begin(), header.end()));
  EXPECT_EQ(a.death(), "the guest sent a malformed control frame (frame larger than the protocol allows)");
  EXPECT_NE(a.failure_of(state).find("malformed control frame"), std::string::npos);
}

TEST(HostileControl, UnknownVersionTypeOrReservedBits) {
  for (int variant = 0; variant < 3; ++variant) {
    LyingAgent a;
    a.say_hello();
    auto f = proto::make_empty_frame(FrameType::StdinEof, 0);
    if (variant == 0) f[4] = 99;
    if (variant == 1) f[5] = 250;
    if (variant == 2) f[7] = 1;
    a.send(f);
    EXPECT_NE(a.death().find("malformed control frame"), std::string::npos) << variant;
  }
}

TEST(HostileControl, OutputBeyondTheWindowEndsTheChannel) {
  LyingAgent a;
  a.say_hello();
  auto state = a.start_exec();
  a.send(proto::make_frame(FrameType::ExecStarted, 1, proto::ExecStarted{7}));
  std::vector<std::uint8_t> chunk(proto::kMaxDataChunk, 'x');
  // Four full chunks fill the window exactly; the fifth is over it.
  for (int i = 0; i < 5; ++i) a.send(proto::make_frame(FrameType::Stdout, 1, chunk.data(), chunk.size()));
  EXPECT_EQ(a.death(), "the guest agent broke the control protocol: output beyond the granted window");
  std::lock_guard lock(state->mutex);
  std::size_t buffered = 0;
  for (const auto& c : state->output) buffered += c.data.size();
  EXPECT_LE(buffered, proto::kInitialWindow) << "host memory grew past the window";
}

TEST(HostileControl, FramesForExecsThatDoNotExist) {
  LyingAgent a;
  a.say_hello();
  a.send(proto::make_frame(FrameType::Stdout, 77, reinterpret_cast<const std::uint8_t*>("x"), 1));
  EXPECT_EQ(a.death(), "the guest agent broke the control protocol: frame for unknown exec 77");
}

TEST(HostileControl, HostOnlyFrameTypesFromTheGuest) {
  LyingAgent a;
  a.say_hello();
  auto state = a.start_exec();
  proto::ExecStart req;
  req.argv = {"evil"};
  a.send(proto::make_frame(FrameType::ExecStart, 1, req));
  EXPECT_NE(a.death().find("is not sent by guests"), std::string::npos);
}

// An exit for an exec the agent never said it started.
TEST(HostileControl, ExitBeforeStart) {
  LyingAgent a;
  a.say_hello();
  a.start_exec();
  proto::PayloadWriter w;
  w.i32(0);
  w.i32(0);
  a.send(proto::make_frame(FrameType::Exit, 1, w.data().data(), w.data().size()));
  EXPECT_EQ(a.death(), "the guest agent broke the control protocol: bad exit");
}

TEST(HostileControl, OutOfRangeExitStatus) {
  LyingAgent a;
  a.say_hello();
  a.start_exec();
  a.send(proto::make_frame(FrameType::ExecStarted, 1, proto::ExecStarted{7}));
  proto::PayloadWriter w;
  w.i32(1000);  // exit codes stop at 255
  w.i32(0);
  a.send(proto::make_frame(FrameType::Exit, 1, w.data().data(), w.data().size()));
  EXPECT_EQ(a.death(), "the guest agent broke the control protocol: bad exit");
}

TEST(HostileControl, SecondHello) {
  LyingAgent a;
  a.say_hello();
  a.send(proto::make_frame(FrameType::Hello, 0, proto::Hello{proto::kProtocolVersion, 1, 1, "again", "", ""}));
  EXPECT_NE(a.death().find("unexpected or malformed hello"), std::string::npos);
}

// A well-formed Hello followed by bytes its length covers but no field does.
TEST(HostileControl, HelloWithTrailingBytes) {
  LyingAgent a;
  proto::PayloadWriter w;
  proto::Hello{proto::kProtocolVersion, 1, 1, "x", "", ""}.encode(w);
  w.u32(0xdeadbeef);
  a.send(proto::make_frame(FrameType::Hello, 0, w.data().data(), w.data().size()));
  EXPECT_NE(a.death().find("unexpected or malformed hello"), std::string::npos);
}

TEST(HostileControl, WrongAgentVersionIsExplained) {
  LyingAgent a;
  a.send(proto::make_frame(FrameType::Hello, 0, proto::Hello{proto::kProtocolVersion + 1, 1, 1, "x", "", ""}));
  EXPECT_NE(a.death().find("rebuild the image"), std::string::npos);
}

TEST(HostileControl, CreditThatWouldOverflowTheStdinWindow) {
  LyingAgent a;
  a.say_hello();
  a.start_exec();
  a.send(proto::make_frame(FrameType::ExecStarted, 1, proto::ExecStarted{7}));
  a.send(proto::make_frame(FrameType::Credit, 1, proto::CreditGrant{proto::kInitialWindow}));
  EXPECT_EQ(a.death(), "the guest agent broke the control protocol: stdin credit overflow");
}
