// Settings only the project's own tests and benchmarks use. They are kept out
// of the public NetworkOptions (which holds just an opaque pointer to them):
// a library user cannot turn them on by accident, and `--help` does not list
// the flags that set them.
#pragma once

#include <string>
#include <vector>

#include "gondolin/net_policy.h"

namespace gondolin::detail {

struct NetworkTestKnobs {
  // These host names resolve to 127.0.0.1 on the host and are exempt from
  // the internal-address check, so tests can stand in loopback servers for
  // upstream hosts (--test-loopback-host, policy key "test_loopback_hosts").
  std::vector<std::string> loopback_hosts;
  // An extra CA certificate (PEM file) trusted for upstream TLS, e.g. a test
  // CA (--upstream-ca, policy key "upstream_ca").
  std::string extra_upstream_ca_file;
};

}  // namespace gondolin::detail

namespace gondolin::config {

// The knobs of `options`, to change; made on first use. Copies of a
// NetworkOptions share knobs until one of them changes its own (copy on write).
detail::NetworkTestKnobs& test_knobs(NetworkOptions& options);
// Read-only view; empty knobs when none were set.
const detail::NetworkTestKnobs& test_knobs(const NetworkOptions& options);

}  // namespace gondolin::config
