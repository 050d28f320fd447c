// Test harness for egress: an EgressService on its own io thread, fed flows
// exactly as the network stack will feed them (one end of a stream socket
// plus the classified prefix), from real clients (curl over a unix socket)
// or raw bytes; real upstream servers on 127.0.0.1 with a test PKI.
#pragma once

#include <sys/types.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "egress/egress_service.h"
#include "gondolin/net_policy.h"
#include "util/unique_fd.h"

namespace gondolin::egress::testing {

std::filesystem::path make_temp_dir(const std::string& prefix);

// A test CA, a server certificate it signed for the listed names, and a
// self-signed certificate nobody trusts. Made with the openssl CLI.
struct TestPki {
  std::filesystem::path dir, ca_cert, server_cert, server_key, untrusted_cert, untrusted_key;
  static TestPki create(const std::filesystem::path& dir, const std::vector<std::string>& names);
};

// tests/egress/upstream_server.py on 127.0.0.1, killed on destruction.
class PythonUpstream {
 public:
  // static_root: files served under /static/.
  explicit PythonUpstream(const std::filesystem::path& cert = {}, const std::filesystem::path& key = {},
                          const std::filesystem::path& static_root = {});
  ~PythonUpstream();
  std::uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

struct CommandOutput {
  int exit_code = -1;
  std::string out, err;
};
// Runs argv (or `sh -c` for a single string with shell syntax), capturing stdout and stderr.
CommandOutput run(const std::vector<std::string>& argv);
CommandOutput run_shell(const std::string& script);

class EgressHarness {
 public:
  explicit EgressHarness(NetworkOptions options);
  ~EgressHarness();

  // Flows accepted on the unix socket are attributed to this destination.
  void set_destination(std::uint16_t port, std::optional<std::string> hostname = std::nullopt);
  const std::filesystem::path& socket_path() const { return socket_path_; }
  // The MITM CA certificate (PEM file) the "guest" must trust.
  std::filesystem::path mitm_ca_file() const { return dir_ / "mitm" / "ca.crt"; }
  const std::filesystem::path& log_path() const { return log_path_; }
  std::vector<nlohmann::json> log_lines() const;
  std::string log_text() const;
  std::string placeholder(const std::string& secret) const;

  // A flow handed straight to the service over a socketpair; returns our end.
  UniqueFd raw_flow(net::FlowKind kind, std::string prefix = {});

  // curl through the proxy: curl_args go after the common options.
  CommandOutput curl(const std::vector<std::string>& curl_args);

 private:
  void accept_next();
  void dispatch(net::GuestFlow flow);

  std::filesystem::path dir_, socket_path_, log_path_;
  boost::asio::io_context io_;
  std::unique_ptr<EgressService> service_;
  std::unique_ptr<boost::asio::local::stream_protocol::acceptor> acceptor_;
  std::uint64_t next_flow_ = 1;
  std::uint16_t dest_port_ = 80;
  std::optional<std::string> dest_host_;
  std::thread thread_;
};

// Sends all of `data`; reads until EOF or `timeout_ms`; returns what arrived.
std::string send_and_read_all(int fd, const std::string& data, int timeout_ms = 10000);
// Reads from fd until `needle` is seen, EOF or timeout.
std::string read_until(int fd, const std::string& needle, int timeout_ms = 10000);
// Current resident set size of this process in KiB.
long current_rss_kib();

}  // namespace gondolin::egress::testing
