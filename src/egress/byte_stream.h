// One interface over the four kinds of connection the proxy moves bytes on:
// the guest's flow (plain, or TLS terminated by our MITM) and the upstream
// connection (plain TCP, or TLS verified against the host's trust store).
// The HTTP code is written once against this.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <functional>
#include <memory>
#include <vector>

namespace gondolin::egress {

using GuestSocket = boost::asio::local::stream_protocol::socket;
using TcpSocket = boost::asio::ip::tcp::socket;

class ByteStream {
 public:
  using Handler = std::function<void(const boost::system::error_code&, std::size_t)>;
  virtual ~ByteStream() = default;

  virtual void read_some(boost::asio::mutable_buffer buffer, Handler handler) = 0;
  // Writes every byte of every buffer (the buffers must outlive the call).
  virtual void write(std::vector<boost::asio::const_buffer> buffers, Handler handler) = 0;
  // Ends our sending side (FIN, or close_notify for TLS), then calls `done`.
  // Bounded: a peer that never answers does not keep it pending.
  virtual void shutdown(std::function<void()> done) = 0;
  // Closes at once; pending operations complete with operation_aborted.
  virtual void close() = 0;
  virtual bool is_open() const = 0;
};

// The peer ended its side (FIN, TLS close or truncation, reset): how a
// close-delimited body or a stale keep-alive connection ends.
bool is_peer_close(const boost::system::error_code& ec);

std::unique_ptr<ByteStream> make_plain_stream(GuestSocket socket);
std::unique_ptr<ByteStream> make_plain_stream(TcpSocket socket);
std::unique_ptr<ByteStream> make_tls_stream(std::unique_ptr<boost::asio::ssl::stream<GuestSocket>> stream);
std::unique_ptr<ByteStream> make_tls_stream(std::unique_ptr<boost::asio::ssl::stream<TcpSocket>> stream);

}  // namespace gondolin::egress
