#include "egress/byte_stream.h"

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace gondolin::egress {

bool is_peer_close(const boost::system::error_code& ec) {
  return ec == boost::asio::error::eof || ec == boost::asio::ssl::error::stream_truncated ||
         ec == boost::asio::error::connection_reset;
}
namespace {

constexpr std::chrono::seconds kTlsShutdownGrace{2};

template <typename Socket>
class PlainStream final : public ByteStream {
 public:
  explicit PlainStream(Socket s) : socket_(std::move(s)) {}
  void read_some(boost::asio::mutable_buffer b, Handler h) override { socket_.async_read_some(b, std::move(h)); }
  void write(std::vector<boost::asio::const_buffer> b, Handler h) override {
    boost::asio::async_write(socket_, std::move(b), std::move(h));
  }
  void shutdown(std::function<void()> done) override {
    boost::system::error_code ec;
    socket_.shutdown(Socket::shutdown_send, ec);
    done();
  }
  void close() override {
    boost::system::error_code ec;
    socket_.close(ec);
  }
  bool is_open() const override { return socket_.is_open(); }

 private:
  Socket socket_;
};

// The ssl::stream is heap-held so its address stays fixed while operations run.
template <typename Socket>
class TlsStream final : public ByteStream {
 public:
  explicit TlsStream(std::unique_ptr<boost::asio::ssl::stream<Socket>> s) : stream_(std::move(s)) {}
  void read_some(boost::asio::mutable_buffer b, Handler h) override { stream_->async_read_some(b, std::move(h)); }
  void write(std::vector<boost::asio::const_buffer> b, Handler h) override {
    boost::asio::async_write(*stream_, std::move(b), std::move(h));
  }
  void shutdown(std::function<void()> done) override {
    // async_shutdown sends close_notify and then waits for the peer's; the
    // timer bounds that wait.
    auto timer = std::make_shared<boost::asio::steady_timer>(stream_->get_executor(), kTlsShutdownGrace);
    auto finished = std::make_shared<bool>(false);
    auto finish = [timer, finished, done = std::move(done)]() {
      if (*finished) return;
      *finished = true;
      timer->cancel();
      done();
    };
    timer->async_wait([this, finish](const boost::system::error_code& ec) {
      if (ec) return;
      close();
      finish();
    });
    stream_->async_shutdown([finish](const boost::system::error_code&) { finish(); });
  }
  void close() override {
    boost::system::error_code ec;
    stream_->lowest_layer().close(ec);
  }
  bool is_open() const override { return stream_->lowest_layer().is_open(); }

 private:
  std::unique_ptr<boost::asio::ssl::stream<Socket>> stream_;
};

}  // namespace

std::unique_ptr<ByteStream> make_plain_stream(GuestSocket socket) {
  return std::make_unique<PlainStream<GuestSocket>>(std::move(socket));
}
std::unique_ptr<ByteStream> make_plain_stream(TcpSocket socket) {
  return std::make_unique<PlainStream<TcpSocket>>(std::move(socket));
}
std::unique_ptr<ByteStream> make_tls_stream(std::unique_ptr<boost::asio::ssl::stream<GuestSocket>> stream) {
  return std::make_unique<TlsStream<GuestSocket>>(std::move(stream));
}
std::unique_ptr<ByteStream> make_tls_stream(std::unique_ptr<boost::asio::ssl::stream<TcpSocket>> stream) {
  return std::make_unique<TlsStream<TcpSocket>>(std::move(stream));
}

}  // namespace gondolin::egress
