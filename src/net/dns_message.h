// DNS messages (RFC 1035) as the guest's resolver sends them: one question,
// optionally an EDNS OPT record, nothing else. The parser is strict and
// bounded (labels <= 63, names <= 255, compression pointers strictly
// backwards and at most a few hops) because every byte comes from the guest.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "net/bytes.h"

namespace gondolin::net {

constexpr std::size_t kMaxDnsQuerySize = 512;
constexpr std::uint16_t kDnsPort = 53;
constexpr std::uint16_t kDnsTypeA = 1;
constexpr std::uint16_t kDnsTypeAaaa = 28;
constexpr std::uint16_t kDnsTypeOpt = 41;
constexpr std::uint16_t kDnsTypeAny = 255;
constexpr std::uint16_t kDnsClassIn = 1;

enum class DnsRcode : std::uint8_t { NoError = 0, FormErr = 1, ServFail = 2, NxDomain = 3, NotImp = 4, Refused = 5 };

struct DnsHeader {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;
  std::uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
  bool is_response() const { return (flags & 0x8000) != 0; }
  std::uint8_t opcode() const { return static_cast<std::uint8_t>((flags >> 11) & 0x0f); }
  bool recursion_desired() const { return (flags & 0x0100) != 0; }
  std::uint8_t rcode() const { return static_cast<std::uint8_t>(flags & 0x0f); }
};

struct DnsQuestion {
  std::string name;  // dotted, case as sent, no trailing dot; "" is the root
  std::uint16_t type = 0;
  std::uint16_t klass = 0;
};

struct DnsQuery {
  DnsHeader header;
  DnsQuestion question;
  bool edns = false;
  std::uint16_t edns_udp_size = 0;
};

Parsed<DnsHeader> parse_dns_header(Bytes message);
// Reads a (possibly compressed) name at `offset` and moves `offset` past it.
// Label bytes are limited to letters, digits, '-' and '_'.
Parsed<std::string> read_dns_name(Bytes message, std::size_t& offset);
// A standard query from a client: QR clear, exactly one question, at most an
// EDNS OPT record after it, no trailing bytes, at most kMaxDnsQuerySize.
Parsed<DnsQuery> parse_dns_query(Bytes message);

// A response's header and question (answers are not interpreted).
struct DnsResponseHead {
  DnsHeader header;
  DnsQuestion question;
};
Parsed<DnsResponseHead> parse_dns_response_head(Bytes message);

struct DnsRecord {
  std::uint16_t type = 0;
  std::uint32_t ttl = 0;
  std::vector<std::uint8_t> rdata;
};

// An authoritative answer to `q` (question echoed, answers named by pointer).
std::vector<std::uint8_t> build_dns_response(const DnsQuery& q, DnsRcode rcode, std::span<const DnsRecord> answers);
// A header-only error reply to a message whose question could not be read.
std::vector<std::uint8_t> build_dns_error(const DnsHeader& request, DnsRcode rcode);
// A fresh recursive query for `question` (with EDNS when `edns_udp_size` > 0).
std::vector<std::uint8_t> build_dns_query(std::uint16_t id, const DnsQuestion& question, std::uint16_t edns_udp_size);

std::string ascii_lower(std::string s);

}  // namespace gondolin::net
