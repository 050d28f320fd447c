#include "egress/ssh/ssh_guest_relay.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <memory>

namespace gondolin::egress {
namespace {

using Socket = boost::asio::local::stream_protocol::socket;

class GuestRelay : public std::enable_shared_from_this<GuestRelay> {
 public:
  GuestRelay(Socket guest, std::string prefix, Socket inner)
      : guest_(std::move(guest)), inner_(std::move(inner)), prefix_(std::move(prefix)) {}

  void start() {
    auto self = shared_from_this();
    boost::asio::async_write(inner_, boost::asio::buffer(prefix_), [self](boost::system::error_code ec, std::size_t) {
      if (ec) return self->close_all();
      self->prefix_.clear();
      self->pump_guest_to_inner();
    });
    pump_inner_to_guest();
  }

 private:
  void pump_guest_to_inner() {
    auto self = shared_from_this();
    guest_.async_read_some(boost::asio::buffer(up_), [self](boost::system::error_code ec, std::size_t n) {
      if (ec) {
        // The guest finished sending (or failed): let libssh see end of input.
        boost::system::error_code ignored;
        self->inner_.shutdown(Socket::shutdown_send, ignored);
        return;
      }
      boost::asio::async_write(self->inner_, boost::asio::buffer(self->up_.data(), n),
                               [self](boost::system::error_code wec, std::size_t) {
                                 if (wec) return self->close_all();
                                 self->pump_guest_to_inner();
                               });
    });
  }

  void pump_inner_to_guest() {
    auto self = shared_from_this();
    inner_.async_read_some(boost::asio::buffer(down_), [self](boost::system::error_code ec, std::size_t n) {
      if (ec) return self->close_all();  // libssh is done with this connection
      boost::asio::async_write(self->guest_, boost::asio::buffer(self->down_.data(), n),
                               [self](boost::system::error_code wec, std::size_t) {
                                 if (wec) return self->close_all();
                                 self->pump_inner_to_guest();
                               });
    });
  }

  void close_all() {
    boost::system::error_code ignored;
    guest_.close(ignored);
    inner_.close(ignored);
  }

  Socket guest_;
  Socket inner_;
  std::string prefix_;
  std::array<char, 16 * 1024> up_{};
  std::array<char, 16 * 1024> down_{};
};

}  // namespace

void start_guest_relay(Socket guest, std::string prefix, Socket inner) {
  std::make_shared<GuestRelay>(std::move(guest), std::move(prefix), std::move(inner))->start();
}

}  // namespace gondolin::egress
