#include "net/dns_message.h"

namespace gondolin::net {
namespace {

constexpr std::size_t kHeaderSize = 12;
constexpr std::size_t kMaxLabel = 63;
constexpr std::size_t kMaxNameWire = 255;
constexpr int kMaxPointerHops = 8;

bool label_byte_ok(std::uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

void write_name(ByteWriter& w, const std::string& dotted) {
  std::size_t start = 0;
  while (start < dotted.size()) {
    std::size_t dot = dotted.find('.', start);
    if (dot == std::string::npos) dot = dotted.size();
    w.u8(static_cast<std::uint8_t>(dot - start));
    w.bytes(Bytes(reinterpret_cast<const std::uint8_t*>(dotted.data()) + start, dot - start));
    start = dot + 1;
  }
  w.u8(0);
}

void write_header(ByteWriter& w, std::uint16_t id, std::uint16_t flags, std::uint16_t qd, std::uint16_t an,
                  std::uint16_t ar) {
  w.u16(id);
  w.u16(flags);
  w.u16(qd);
  w.u16(an);
  w.u16(0);
  w.u16(ar);
}

Parsed<DnsQuestion> read_question(Bytes message, std::size_t& offset) {
  using P = Parsed<DnsQuestion>;
  auto name = read_dns_name(message, offset);
  if (!name) return P::fail(name.error());
  DnsQuestion q;
  q.name = std::move(name.value());
  ByteReader r(message.subspan(offset));
  if (!r.u16(q.type) || !r.u16(q.klass)) return P::fail("DNS question truncated");
  offset += 4;
  return q;
}

}  // namespace

std::string ascii_lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

Parsed<DnsHeader> parse_dns_header(Bytes message) {
  ByteReader r(message);
  DnsHeader h;
  if (!r.u16(h.id) || !r.u16(h.flags) || !r.u16(h.qdcount) || !r.u16(h.ancount) || !r.u16(h.nscount) ||
      !r.u16(h.arcount))
    return Parsed<DnsHeader>::fail("DNS message shorter than its header");
  return h;
}

Parsed<std::string> read_dns_name(Bytes message, std::size_t& offset) {
  using P = Parsed<std::string>;
  std::string name;
  std::size_t pos = offset;
  std::size_t wire_length = 0;
  std::size_t limit = offset;  // every pointer must land before this, which then moves down
  int hops = 0;
  bool jumped = false;
  // Pointers go strictly below everything read so far, so reading cannot
  // loop; the hop limit keeps it cheap.
  for (;;) {
    if (pos >= message.size()) return P::fail("DNS name runs past the message");
    const std::uint8_t len = message[pos];
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= message.size()) return P::fail("DNS name runs past the message");
      const std::size_t target = ((std::size_t{len} & 0x3fu) << 8) | message[pos + 1];
      if (target >= limit) return P::fail("DNS compression pointer does not point backwards");
      limit = target;
      if (++hops > kMaxPointerHops) return P::fail("too many DNS compression pointers");
      if (!jumped) offset = pos + 2;
      jumped = true;
      pos = target;
      continue;
    }
    if ((len & 0xc0) != 0) return P::fail("unsupported DNS label type");
    wire_length += std::size_t{len} + 1;
    if (wire_length > kMaxNameWire) return P::fail("DNS name longer than 255 bytes");
    if (len == 0) {
      if (!jumped) offset = pos + 1;
      return name;
    }
    if (len > kMaxLabel) return P::fail("DNS label longer than 63 bytes");
    if (pos + 1 + len > message.size()) return P::fail("DNS name runs past the message");
    if (!name.empty()) name.push_back('.');
    for (std::size_t i = 0; i < len; ++i) {
      const std::uint8_t c = message[pos + 1 + i];
      if (!label_byte_ok(c)) return P::fail("DNS label with characters other than letters, digits, '-' and '_'");
      name.push_back(static_cast<char>(c));
    }
    pos += 1 + std::size_t{len};
  }
}

Parsed<DnsQuery> parse_dns_query(Bytes message) {
  using P = Parsed<DnsQuery>;
  if (message.size() > kMaxDnsQuerySize) return P::fail("DNS query larger than 512 bytes");
  auto header = parse_dns_header(message);
  if (!header) return P::fail(header.error());
  DnsQuery q;
  q.header = header.value();
  if (q.header.is_response()) return P::fail("DNS message is a response, not a query");
  if (q.header.qdcount != 1) return P::fail("DNS query without exactly one question");
  if (q.header.ancount != 0 || q.header.nscount != 0) return P::fail("DNS query carries answer or authority records");
  if (q.header.arcount > 1) return P::fail("DNS query carries more than one additional record");
  std::size_t offset = kHeaderSize;
  auto question = read_question(message, offset);
  if (!question) return P::fail(question.error());
  q.question = std::move(question.value());
  if (q.header.arcount == 1) {
    // Only an EDNS OPT pseudo-record: root name, type 41, class = UDP size.
    ByteReader r(message.subspan(offset));
    std::uint8_t root = 1;
    std::uint16_t type = 0, udp_size = 0, rdlength = 0;
    std::uint32_t ttl = 0;
    if (!r.u8(root) || !r.u16(type) || !r.u16(udp_size) || !r.u32(ttl) || !r.u16(rdlength))
      return P::fail("DNS additional record truncated");
    if (root != 0 || type != kDnsTypeOpt) return P::fail("DNS additional record is not EDNS OPT");
    if (!r.skip(rdlength)) return P::fail("DNS OPT record truncated");
    q.edns = true;
    q.edns_udp_size = udp_size;
    offset += r.offset();
  }
  if (offset != message.size()) return P::fail("trailing bytes after the DNS query");
  return q;
}

Parsed<DnsResponseHead> parse_dns_response_head(Bytes message) {
  using P = Parsed<DnsResponseHead>;
  auto header = parse_dns_header(message);
  if (!header) return P::fail(header.error());
  DnsResponseHead h;
  h.header = header.value();
  if (!h.header.is_response()) return P::fail("DNS message is not a response");
  if (h.header.qdcount != 1) return P::fail("DNS response without exactly one question");
  std::size_t offset = kHeaderSize;
  auto question = read_question(message, offset);
  if (!question) return P::fail(question.error());
  h.question = std::move(question.value());
  return h;
}

std::vector<std::uint8_t> build_dns_response(const DnsQuery& q, DnsRcode rcode, std::span<const DnsRecord> answers) {
  std::vector<std::uint8_t> out;
  ByteWriter w(out);
  const std::uint16_t flags =
      static_cast<std::uint16_t>(0x8000 | (q.header.flags & 0x7800) | 0x0400 | (q.header.flags & 0x0100) | 0x0080 |
                                 static_cast<std::uint16_t>(rcode));
  write_header(w, q.header.id, flags, 1, static_cast<std::uint16_t>(answers.size()), 0);
  write_name(w, q.question.name);
  w.u16(q.question.type);
  w.u16(q.question.klass);
  for (const auto& a : answers) {
    w.u16(0xc000 | kHeaderSize);  // the question's name
    w.u16(a.type);
    w.u16(kDnsClassIn);
    w.u32(a.ttl);
    w.u16(static_cast<std::uint16_t>(a.rdata.size()));
    w.bytes(a.rdata);
  }
  return out;
}

std::vector<std::uint8_t> build_dns_error(const DnsHeader& request, DnsRcode rcode) {
  std::vector<std::uint8_t> out;
  ByteWriter w(out);
  const std::uint16_t flags = static_cast<std::uint16_t>(0x8000 | (request.flags & 0x7800) | (request.flags & 0x0100) |
                                                         0x0080 | static_cast<std::uint16_t>(rcode));
  write_header(w, request.id, flags, 0, 0, 0);
  return out;
}

std::vector<std::uint8_t> build_dns_query(std::uint16_t id, const DnsQuestion& question, std::uint16_t edns_udp_size) {
  std::vector<std::uint8_t> out;
  ByteWriter w(out);
  write_header(w, id, 0x0100, 1, 0, edns_udp_size > 0 ? 1 : 0);
  write_name(w, question.name);
  w.u16(question.type);
  w.u16(question.klass);
  if (edns_udp_size > 0) {
    w.u8(0);
    w.u16(kDnsTypeOpt);
    w.u16(edns_udp_size);
    w.u32(0);
    w.u16(0);
  }
  return out;
}

}  // namespace gondolin::net
