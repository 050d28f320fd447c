// The egress audit trail: one JSON line per allow/deny decision, to the
// --egress-log file and to the debug log. Secret values never appear here:
// only the names of the secrets that were substituted.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace gondolin::egress {

struct EgressEvent {
  std::uint64_t flow = 0;
  std::string kind;  // http, https, ssh, tcp (mapped), ingress, other
  std::string host;
  std::uint16_t port = 0;  // the port the guest dialled
  std::string method;
  std::string path;                  // without the query
  std::string decision;              // allow, deny, error
  std::string rule;                  // which rule decided: "allow-host *.example.com", "not-in-allowlist", ...
  std::vector<std::string> secrets;  // names substituted
  int status = 0;                    // status sent to the guest by gondolin itself, if any
  std::string reason;                // one line, for deny and error
  std::string upstream;              // address connected to, for allow
  // Connections that stay open (mapped TCP, ingress) log twice: "open" once
  // connected, "close" with the bytes moved each way.
  std::string event;
  std::string peer;  // ingress: the host-side client address
  std::optional<std::uint64_t> bytes_from_guest, bytes_to_guest;

  // The one way events are made: the flow first, then what was decided.
  static EgressEvent for_flow(std::uint64_t flow, std::string kind, std::string host, std::uint16_t port,
                              std::string rule = {}) {
    EgressEvent e;
    e.flow = flow;
    e.kind = std::move(kind);
    e.host = std::move(host);
    e.port = port;
    e.rule = std::move(rule);
    return e;
  }
  // A copy of this event with its decision (and, for open/close pairs, the event).
  EgressEvent decided(std::string decision_, std::string reason_ = {}, std::string event_ = {}) const {
    EgressEvent e = *this;
    e.decision = std::move(decision_);
    e.reason = std::move(reason_);
    e.event = std::move(event_);
    return e;
  }
  // A copy of this (open) event as the "close" of its connection.
  EgressEvent closed(std::uint64_t to_guest, std::uint64_t from_guest, std::string reason_) const {
    EgressEvent e = *this;
    e.event = "close";
    e.bytes_to_guest = to_guest;
    e.bytes_from_guest = from_guest;
    e.reason = std::move(reason_);
    return e;
  }
};

class EgressLog {
 public:
  // Empty path: debug log only. Throws gondolin::Error (Io) if the file cannot be opened.
  explicit EgressLog(const std::string& path);
  void record(const EgressEvent& event);
  // One JSON line from another egress path (SSH), written the same way.
  // Both may be called from any thread.
  void write_line(std::string line);

 private:
  struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::mutex mutex_;
  std::unique_ptr<std::FILE, FileCloser> file_;
};

std::string to_json_line(const EgressEvent& event);

}  // namespace gondolin::egress
