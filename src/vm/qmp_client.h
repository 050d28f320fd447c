// A minimal QMP (QEMU Machine Protocol) client on the VM's io thread: the
// greeting, capability negotiation, then commands answered in order. Used
// for stop/cont, migration (snapshots) and status queries.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "util/unique_fd.h"

namespace gondolin::vm {

class QmpClient : public std::enable_shared_from_this<QmpClient> {
 public:
  // `ok` false: `reply` holds {"error": ...} or a transport error description.
  using Reply = std::function<void(bool ok, const nlohmann::json& reply)>;

  QmpClient(boost::asio::io_context& io, UniqueFd socket);

  // Reads the greeting and negotiates capabilities; commands sent before that
  // finishes are queued.
  void start();
  void execute(const std::string& command, nlohmann::json arguments, Reply on_reply);
  void close();

 private:
  struct Pending {
    std::string line;
    Reply on_reply;
  };
  void read_more();
  void on_line(const std::string& line);
  void send_next();
  void fail_all(const std::string& why);

  boost::asio::local::stream_protocol::socket socket_;
  std::string buffer_;
  std::array<char, 8192> chunk_{};
  bool greeted_ = false;
  bool in_flight_ = false;
  bool closed_ = false;
  std::deque<Pending> queue_;
};

}  // namespace gondolin::vm
