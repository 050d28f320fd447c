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

}  // namespace gondolin::net
