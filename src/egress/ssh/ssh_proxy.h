// The SSH egress proxy: the entry point for guest TCP flows the classifier
// recognised as SSH (EgressHandlers::on_ssh). Each flow gets its own thread
// (libssh blocks), bounded by SshOptions::max_connections; the io thread only
// starts the relay and the thread and never waits.
#pragma once

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "egress/ssh/ssh_audit.h"
#include "egress/ssh/ssh_host_key.h"
#include "gondolin/ssh_options.h"
#include "net/guest_flow.h"

namespace gondolin::egress {

struct SshProxyState;
class SocketAbortSwitch;

struct SshProxyConfig {
  SshOptions options;
  std::shared_ptr<SshAuditSink> audit;  // null: decisions go to the debug log only
  // TEST ONLY: these allowed host names connect to 127.0.0.1 instead of
  // being resolved (NetworkOptions::test_loopback_hosts).
  std::vector<std::string> test_loopback_hosts;
};

class SshProxy {
 public:
  // Validates the options (gondolin::Error, Usage) and loads or creates the
  // per-user host key (gondolin::Error, Io). Handlers run on `io`'s thread.
  SshProxy(boost::asio::io_context& io, SshProxyConfig config);
  // Ends every live connection (their sockets are shut down) and joins its thread.
  ~SshProxy();
  SshProxy(const SshProxy&) = delete;
  SshProxy& operator=(const SshProxy&) = delete;

  // Takes over a guest flow classified as SSH. Call on the io thread; never blocks.
  void handle(net::GuestFlow flow);
  // The session's deny list: new connections and each new exec request to a
  // denied host are refused (a running exec finishes). Any thread.
  void set_denied_hosts(const std::vector<std::string>& patterns);

  // known_hosts lines the guest needs for the proxy's key, one per allowed host.
  std::vector<std::string> guest_known_hosts() const;
  const ProxyHostKey& host_key() const;

 private:
  struct Worker {
    std::thread thread;
    std::shared_ptr<SocketAbortSwitch> abort;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void reap_finished_locked();

  boost::asio::io_context& io_;
  std::shared_ptr<SshProxyState> state_;
  std::mutex mutex_;  // workers_: the io thread adds, the destructor (any thread) ends
  std::map<std::uint64_t, Worker> workers_;
  std::uint64_t next_worker_ = 1;
};

// The guest-side known_hosts lines for `options` (loading or creating the
// host key), for callers that have no proxy at hand yet, e.g. at boot.
std::vector<std::string> ssh_guest_known_hosts(const SshOptions& options);

}  // namespace gondolin::egress
