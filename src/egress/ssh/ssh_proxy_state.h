// What the SSH proxy's connection threads share: the validated options, the
// host key, the audit sink and the count of live upstream sessions. Read-only
// after construction except the counter.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "egress/policy/host_pattern.h"
#include "egress/ssh/ssh_audit.h"
#include "egress/ssh/ssh_host_key.h"
#include "egress/ssh/ssh_session_budget.h"
#include "gondolin/ssh_options.h"

namespace gondolin::egress {

// Facts about the guest's TCP flow the proxy needs (copied from net::GuestFlowInfo).
struct SshFlowFacts {
  std::uint64_t flow_id = 0;
  std::optional<std::string> hostname;  // the name behind the address the guest dialled
  std::string dest_address;             // dotted quad, for logs
  std::uint16_t dest_port = 0;
};

struct SshProxyState {
  SshProxyState(SshOptions o, ProxyHostKey k, std::shared_ptr<SshAuditSink> a, std::string agent,
                std::set<std::string> loopback)
      : options(std::move(o)),
        host_key(std::move(k)),
        audit(std::move(a)),
        agent_socket(std::move(agent)),
        loopback_hosts(std::move(loopback)),
        sessions(options.max_sessions) {}

  const SshOptions options;
  const ProxyHostKey host_key;
  const std::shared_ptr<SshAuditSink> audit;   // may be null: debug log only
  const std::string agent_socket;              // empty: no agent
  const std::set<std::string> loopback_hosts;  // TEST ONLY: connect to 127.0.0.1
  mutable SessionBudget sessions;              // the one shared counter

  void record(const SshAuditEvent& event) const;

  // The session's deny list (--deny-host, live denials), which SSH egress
  // honours too: set from the io thread, read by connection threads.
  void set_denied(const std::vector<std::string>& patterns);
  // The pattern that denies `host`, or empty.
  std::string denied(const std::string& host) const;

 private:
  mutable std::mutex deny_mutex_;
  HostPatternList deny_;
};

}  // namespace gondolin::egress
