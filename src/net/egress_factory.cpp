#include "net/egress_factory.h"

#include "net/flow_classifier.h"
#include "util/logging.h"

namespace gondolin::net {

void RefuseAllEgress::refuse(GuestFlow& flow) {
  log().info("net: refused {} flow to {}:{} (no egress for it)", to_string(flow.kind), to_string(flow.info.dest_ip),
             flow.info.dest_port);
  boost::system::error_code ignored;
  flow.socket.close(ignored);
}

EgressFactory refuse_all_egress() {
  return [](boost::asio::io_context&, const NetworkOptions&) -> std::unique_ptr<EgressHandlers> {
    return std::make_unique<RefuseAllEgress>();
  };
}

namespace {

class BorrowedEgress final : public EgressHandlers {
 public:
  explicit BorrowedEgress(EgressHandlers& to) : to_(to) {}
  void on_http(GuestFlow flow) override { to_.on_http(std::move(flow)); }
  void on_tls(GuestFlow flow) override { to_.on_tls(std::move(flow)); }
  void on_ssh(GuestFlow flow) override { to_.on_ssh(std::move(flow)); }
  void on_other(GuestFlow flow) override { to_.on_other(std::move(flow)); }
  bool is_mapped(const GuestFlowInfo& info) const override { return to_.is_mapped(info); }
  void on_mapped(GuestFlow flow) override { to_.on_mapped(std::move(flow)); }

 private:
  EgressHandlers& to_;
};

}  // namespace

EgressFactory borrowed_egress(EgressHandlers& handlers) {
  return [&handlers](boost::asio::io_context&, const NetworkOptions&) -> std::unique_ptr<EgressHandlers> {
    return std::make_unique<BorrowedEgress>(handlers);
  };
}

}  // namespace gondolin::net
