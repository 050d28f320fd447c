// The one rule for a DNS name a user writes in a setting (--tcp-map guest
// names, --ssh-allow-host, --ssh-key/--ssh-user hosts), and for the ports
// written next to them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gondolin::config {

// Lower case, without a trailing dot.
std::string normalize_host_name(std::string_view host);

// Empty if `host` (normalized) is a well-formed DNS name: at most 253
// characters, labels of 1..63 letters, digits, '-' or '_' that neither start
// nor end with '-'. Otherwise one phrase saying why not.
std::string dns_name_problem(std::string_view host);

// Whether the last label is all digits: an address written as a name.
bool ends_in_numeric_label(std::string_view host);

// A port 1..65535 written in decimal, or false.
bool parse_port(std::string_view text, std::uint16_t& out);

}  // namespace gondolin::config
