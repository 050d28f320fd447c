#include "vm/qmp_client.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

#include "util/logging.h"

namespace gondolin::vm {
namespace {
// QMP replies are small; a runaway line means something is wrong.
constexpr std::size_t kMaxLine = 1 << 20;
}  // namespace

QmpClient::QmpClient(boost::asio::io_context& io, UniqueFd socket)
    : socket_(io, boost::asio::local::stream_protocol(), socket.release()) {}

void QmpClient::start() {
  // qmp_capabilities goes first; its reply arrives after the greeting.
  queue_.push_front({R"({"execute":"qmp_capabilities"})", [](bool ok, const nlohmann::json& r) {
                       if (!ok) log().debug("QMP capability negotiation failed: {}", r.dump());
                     }});
  read_more();
}

void QmpClient::execute(const std::string& command, nlohmann::json arguments, Reply on_reply) {
  if (closed_) {
    on_reply(false, nlohmann::json{{"error", {{"desc", "QMP connection closed"}}}});
    return;
  }
  nlohmann::json msg{{"execute", command}};
  if (!arguments.is_null()) msg["arguments"] = std::move(arguments);
  queue_.push_back({msg.dump(), std::move(on_reply)});
  send_next();
}

void QmpClient::close() {
  if (closed_) return;
  boost::system::error_code ec;
  socket_.close(ec);
  fail_all("QMP connection closed");
}

void QmpClient::fail_all(const std::string& why) {
  closed_ = true;
  auto pending = std::move(queue_);
  queue_.clear();
  for (auto& p : pending)
    if (p.on_reply) p.on_reply(false, nlohmann::json{{"error", {{"desc", why}}}});
}

void QmpClient::send_next() {
  if (!greeted_ || in_flight_ || queue_.empty() || closed_) return;
  in_flight_ = true;
  auto line = std::make_shared<std::string>(queue_.front().line + "\n");
  boost::asio::async_write(socket_, boost::asio::buffer(*line),
                           [self = shared_from_this(), line](const boost::system::error_code& ec, std::size_t) {
                             if (ec) self->fail_all("QMP write: " + ec.message());
                           });
}

void QmpClient::read_more() {
  socket_.async_read_some(boost::asio::buffer(chunk_),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                            if (self->closed_) return;
                            if (ec) return self->fail_all("QMP: " + ec.message());
                            self->buffer_.append(self->chunk_.data(), n);
                            std::size_t nl;
                            while ((nl = self->buffer_.find('\n')) != std::string::npos) {
                              std::string line = self->buffer_.substr(0, nl);
                              self->buffer_.erase(0, nl + 1);
                              self->on_line(line);
                              if (self->closed_) return;
                            }
                            if (self->buffer_.size() > kMaxLine) return self->fail_all("QMP line too long");
                            self->read_more();
                          });
}

void QmpClient::on_line(const std::string& line) {
  auto msg = nlohmann::json::parse(line, nullptr, false);
  if (msg.is_discarded() || !msg.is_object()) return;
  if (msg.contains("QMP")) {
    greeted_ = true;
    send_next();
    return;
  }
  if (msg.contains("event")) {
    log().debug("QMP event: {}", line);
    return;
  }
  if (!in_flight_ || queue_.empty()) return;
  Pending p = std::move(queue_.front());
  queue_.pop_front();
  in_flight_ = false;
  bool ok = msg.contains("return");
  if (p.on_reply) p.on_reply(ok, ok ? msg["return"] : msg);
  send_next();
}

}  // namespace gondolin::vm
