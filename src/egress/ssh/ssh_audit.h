// The SSH proxy's audit trail: one JSON line per decision (an exec, a shell
// or subsystem request, a forwarding attempt, a refused connection). Never
// holds key material; plain commands are reduced to their first word.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

namespace gondolin::egress {

struct SshAuditEvent {
  std::uint64_t flow = 0;
  std::string host;        // the name the guest dialled ("" if it had none)
  std::uint16_t port = 0;  // the port the guest dialled
  std::string user;        // the upstream user
  std::string command;     // git: "git-upload-pack '/org/repo.git'"; plain: first word; else the request
  std::string decision;    // allow, deny, error
  std::string reason;      // one line, for deny and error
  std::string upstream;    // "host:port" the proxy connected to, for allow
};

// Receives every decision. Called from the proxy's connection threads, so
// implementations must be thread-safe.
class SshAuditSink {
 public:
  virtual ~SshAuditSink() = default;
  virtual void record(const SshAuditEvent& event) = 0;
};

// {"time":...,"flow":...,"kind":"ssh","host":...,"port":...,"user":...,"command":...,
//  "decision":...,"reason":...,"upstream":...}; empty fields are left out.
std::string to_json_line(const SshAuditEvent& event);

// Appends JSON lines to a file (0600) and mirrors them to the debug log.
class SshAuditFile final : public SshAuditSink {
 public:
  // Throws gondolin::Error (Io) if the file cannot be opened.
  explicit SshAuditFile(const std::string& path);
  void record(const SshAuditEvent& event) override;

 private:
  struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::mutex mutex_;
  std::unique_ptr<std::FILE, FileCloser> file_;
};

}  // namespace gondolin::egress
