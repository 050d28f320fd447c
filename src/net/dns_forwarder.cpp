#include "net/dns_forwarder.h"

#include <boost/asio/steady_timer.hpp>

#include <fstream>
#include <random>
#include <sstream>

#include "gondolin/error.h"
#include "util/logging.h"

namespace gondolin::net {

namespace asio = boost::asio;
using asio::ip::udp;

namespace {

constexpr std::size_t kMaxServers = 3;
constexpr std::size_t kReplyBuffer = 4096;

std::uint16_t random_id() {
  static thread_local std::mt19937 rng{std::random_device{}()};
  return static_cast<std::uint16_t>(rng());
}

}  // namespace

std::vector<DnsServer> resolv_conf_servers(const std::string& path) {
  std::vector<DnsServer> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line) && out.size() < kMaxServers;) {
    std::istringstream words(line);
    std::string key, value;
    if (!(words >> key >> value) || key != "nameserver") continue;
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(value, ec);
    if (!ec) out.emplace_back(addr, kDnsPort);
  }
  return out;
}

struct DnsForwarder::Query {
  Query(asio::io_context& io) : socket(io), timer(io) {}
  udp::socket socket;
  asio::steady_timer timer;
  std::vector<std::uint8_t> request;
  std::array<std::uint8_t, kReplyBuffer> buffer{};
  std::size_t server = 0;
  int attempts_left = 2;
  bool checked = false;
  std::uint16_t sent_id = 0;
  std::uint16_t guest_id = 0;
  DnsQuestion question;
  DnsHeader guest_header;
  ReplySink sink;
};

DnsForwarder::DnsForwarder(asio::io_context& io, std::vector<DnsServer> servers)
    : io_(io), servers_(std::move(servers)) {
  if (servers_.empty()) throw Error(ErrorKind::Usage, "no DNS server to forward to");
}

DnsForwarder::~DnsForwarder() {
  for (const auto& q : queries_) {
    q->sink = nullptr;
    boost::system::error_code ignored;
    q->socket.close(ignored);
    q->timer.cancel();
  }
}

void DnsForwarder::forward_checked(const DnsQuery& query, ReplySink sink) {
  if (queries_.size() >= kMaxInFlight) return;
  auto q = std::make_shared<Query>(io_);
  q->checked = true;
  q->sent_id = random_id();
  q->guest_id = query.header.id;
  q->guest_header = query.header;
  q->question = query.question;
  // Keep the guest's EDNS buffer size (bounded) so the answer fits what it reads.
  std::uint16_t edns =
      query.edns ? std::min<std::uint16_t>(std::max<std::uint16_t>(query.edns_udp_size, 512), 1232) : 0;
  q->request = build_dns_query(q->sent_id, query.question, edns);
  q->sink = std::move(sink);
  start(std::move(q));
}

void DnsForwarder::forward_raw(Bytes message, ReplySink sink) {
  if (queries_.size() >= kMaxInFlight || message.size() < 12) return;
  auto q = std::make_shared<Query>(io_);
  q->request.assign(message.begin(), message.end());
  q->sent_id = load_u16(message.data());
  q->guest_id = q->sent_id;
  q->sink = std::move(sink);
  start(std::move(q));
}

void DnsForwarder::start(std::shared_ptr<Query> q) {
  q->server = static_cast<std::size_t>(random_id()) % servers_.size();
  q->attempts_left = servers_.size() > 1 ? 2 : 1;
  queries_.insert(q);
  send(q);
}

void DnsForwarder::send(const std::shared_ptr<Query>& q) {
  const DnsServer& server = servers_[q->server];
  boost::system::error_code ec;
  if (q->socket.is_open()) q->socket.close(ec);
  q->socket.open(server.protocol(), ec);
  if (!ec) q->socket.connect(server, ec);
  if (!ec) q->socket.send(asio::buffer(q->request), 0, ec);
  if (ec) log().debug("dns: cannot query {}: {}", server.address().to_string(), ec.message());
  --q->attempts_left;
  q->timer.expires_after(kTimeout);
  q->timer.async_wait([this, q](const boost::system::error_code& tec) {
    if (tec || !q->sink) return;
    if (q->attempts_left > 0) {
      q->server = (q->server + 1) % servers_.size();
      send(q);
      return;
    }
    // Trusted mode tells the guest at once; open mode stays as silent as the server.
    finish(q, q->checked ? build_dns_error(q->guest_header, DnsRcode::ServFail) : std::vector<std::uint8_t>{});
  });
  if (!ec) receive(q);
}

void DnsForwarder::receive(const std::shared_ptr<Query>& q) {
  q->socket.async_receive(asio::buffer(q->buffer), [this, q](const boost::system::error_code& ec, std::size_t n) {
    if (ec || !q->sink) return;  // closed, cancelled, or ICMP-refused: the timer decides
    Bytes reply(q->buffer.data(), n);
    if (n == q->buffer.size() || !acceptable(*q, reply)) return receive(q);
    std::vector<std::uint8_t> out(reply.begin(), reply.end());
    out[0] = static_cast<std::uint8_t>(q->guest_id >> 8);
    out[1] = static_cast<std::uint8_t>(q->guest_id);
    finish(q, std::move(out));
  });
}

bool DnsForwarder::acceptable(const Query& q, Bytes reply) const {
  if (reply.size() < 12 || load_u16(reply.data()) != q.sent_id) return false;
  if (!q.checked) return true;
  auto head = parse_dns_response_head(reply);
  return head && ascii_lower(head->question.name) == ascii_lower(q.question.name) &&
         head->question.type == q.question.type && head->question.klass == q.question.klass;
}

void DnsForwarder::finish(const std::shared_ptr<Query>& q, std::vector<std::uint8_t> reply) {
  ReplySink sink = std::move(q->sink);
  q->sink = nullptr;
  boost::system::error_code ignored;
  q->socket.close(ignored);
  q->timer.cancel();
  queries_.erase(q);
  if (sink && !reply.empty()) sink(std::move(reply));
}

}  // namespace gondolin::net
