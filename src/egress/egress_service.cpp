#include "egress/egress_service.h"

#include "config/tcp_rules.h"
#include "config/test_knobs.h"
#include "egress/byte_stream.h"
#include "egress/egress_context.h"
#include "egress/http/http_session.h"
#include "egress/live_policy.h"
#include "egress/policy/host_pattern.h"
#include "egress/ssh/ssh_proxy.h"
#include "egress/tcp/mapped_tcp.h"
#include "egress/tls/tls_interceptor.h"
#include "gondolin/error.h"
#include "util/logging.h"

namespace gondolin::egress {
namespace {

// SSH decisions land in the VM's egress log next to the HTTP ones.
class EgressLogSshSink final : public SshAuditSink {
 public:
  explicit EgressLogSshSink(std::shared_ptr<EgressContext> ctx) : ctx_(std::move(ctx)) {}
  void record(const SshAuditEvent& event) override { ctx_->log.write_line(to_json_line(event)); }

 private:
  std::shared_ptr<EgressContext> ctx_;
};

}  // namespace

EgressService::EgressService(boost::asio::io_context& io, const NetworkOptions& options) {
  EgressPolicy{options};  // bad patterns or secrets fail before anything touches the CA directory
  config::validate_tcp_maps(options.tcp_maps);
  config::validate_ingress(options.ingress);
  config::validate_tcp_idle_timeout(options.tcp_idle_timeout);
  if (!options.tcp_maps.empty() &&
      (options.dns != DnsMode::Synthetic || options.host_mapping != SyntheticHostMapping::PerHost))
    throw Error(ErrorKind::Usage,
                "mapped TCP needs synthetic DNS with per-host mapping (NetworkOptions::host_mapping = PerHost)");
  auto dir =
      options.mitm_ca_dir.empty() ? CertificateAuthority::default_dir() : std::filesystem::path(options.mitm_ca_dir);
  ctx_ = std::make_shared<EgressContext>(io, options, CertificateAuthority::load_or_create(dir));
  if (!options.ingress.empty()) ingress_ = std::make_unique<IngressListeners>(ctx_, options.ingress);
  if (!options.ssh.allowed_hosts.empty()) {
    SshProxyConfig ssh_config;
    ssh_config.options = options.ssh;
    ssh_config.audit = std::make_shared<EgressLogSshSink>(ctx_);
    ssh_config.test_loopback_hosts = config::test_knobs(options).loopback_hosts;
    ssh_ = std::make_unique<SshProxy>(io, std::move(ssh_config));
    ssh_->set_denied_hosts(options.deny_hosts);
  }
}

EgressService::~EgressService() = default;

std::optional<GuestSlot> EgressService::admit(net::GuestFlow& flow, const char* kind) {
  const std::size_t limit = ctx_->options.max_guest_connections;
  // Hysteresis, so a guest hovering at the cap does not flood the log.
  if (ctx_->guest_connections < limit / 2) ctx_->guest_cap_reported = false;
  if (ctx_->guest_connections < limit) return GuestSlot(ctx_);
  if (!ctx_->guest_cap_reported) {
    log().warn(
        "egress: the guest has {} HTTP/HTTPS connections open at once (the limit); closing new ones until some end",
        limit);
    ctx_->guest_cap_reported = true;
  }
  refuse(flow, kind, "guest-connection-cap",
         "too many guest connections at once (limit " + std::to_string(limit) + ")");
  return std::nullopt;
}

void EgressService::on_http(net::GuestFlow flow) {
  auto slot = admit(flow, "http");
  if (!slot) return;
  FlowFacts facts;
  facts.flow_id = flow.info.flow_id;
  facts.port = flow.info.dest_port;
  if (flow.info.hostname) facts.dns_name = normalize_host(*flow.info.hostname);
  std::make_shared<HttpSession>(ctx_, std::move(facts), make_plain_stream(std::move(flow.socket)), flow.prefix,
                                std::move(*slot))
      ->start();
}

void EgressService::on_tls(net::GuestFlow flow) {
  auto slot = admit(flow, "https");
  if (!slot) return;
  intercept_tls(ctx_, std::move(flow), std::move(*slot));
}

void EgressService::on_ssh(net::GuestFlow flow) {
  if (!ssh_) return refuse(flow, "ssh", "ssh-not-allowed", "SSH egress is off (no --ssh-allow-host)");
  ssh_->handle(std::move(flow));
}

void EgressService::on_other(net::GuestFlow flow) {
  refuse(flow, "other", "unrecognized-protocol", "only HTTP and HTTPS may leave the guest");
}

bool EgressService::is_mapped(const net::GuestFlowInfo& info) const {
  return info.hostname && config::find_tcp_map(ctx_->options.tcp_maps, *info.hostname, info.dest_port);
}

void EgressService::on_mapped(net::GuestFlow flow) {
  const TcpMap* rule = flow.info.hostname
                           ? config::find_tcp_map(ctx_->options.tcp_maps, *flow.info.hostname, flow.info.dest_port)
                           : nullptr;
  if (!rule) return refuse(flow, "tcp", "not-mapped", "no --tcp-map rule for this name and port");
  relay_mapped_flow(ctx_, *rule, std::move(flow));
}

void EgressService::start_ingress(GuestPortDialer dial) {
  if (ingress_) ingress_->start(std::move(dial));
}

std::vector<boost::asio::ip::tcp::endpoint> EgressService::ingress_endpoints() const {
  return ingress_ ? ingress_->local_endpoints() : std::vector<boost::asio::ip::tcp::endpoint>{};
}

void EgressService::refuse(net::GuestFlow& flow, const char* kind, const std::string& rule, const std::string& reason) {
  const auto& ip = flow.info.dest_ip;
  std::string host = flow.info.hostname.value_or(std::to_string(ip[0]) + "." + std::to_string(ip[1]) + "." +
                                                 std::to_string(ip[2]) + "." + std::to_string(ip[3]));
  ctx_->log.record(EgressEvent::for_flow(flow.info.flow_id, kind, std::move(host), flow.info.dest_port, rule)
                       .decided("deny", reason));
  boost::system::error_code ec;
  flow.socket.close(ec);
}

std::vector<std::pair<std::string, std::string>> EgressService::guest_env() const {
  return ctx_->policy.secrets().guest_env();
}

PolicyState EgressService::policy_state() const { return egress::policy_state(*ctx_); }

PolicyState EgressService::change_policy(const PolicyChange& change, uid_t uid) {
  PolicyState state = egress::change_policy(*ctx_, change, uid);
  if (ssh_) ssh_->set_denied_hosts(state.deny_hosts);
  return state;
}

std::vector<RevokedSecret> EgressService::revoked_secrets() const { return ctx_->revoked_secrets; }

void EgressService::restore_revoked_secrets(std::vector<RevokedSecret> revoked) {
  egress::restore_revoked_secrets(*ctx_, std::move(revoked));
}

std::vector<std::string> EgressService::guest_ssh_known_hosts() const {
  return ssh_ ? ssh_->guest_known_hosts() : std::vector<std::string>{};
}

const std::string& EgressService::ca_certificate_pem() const { return ctx_->ca->certificate_pem(); }

}  // namespace gondolin::egress
