// How a VM gets its egress: a factory run on the VM's io thread when the
// network starts. A VM's default is its EgressService (src/egress).
#pragma once

#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>

#include "gondolin/net_policy.h"
#include "net/guest_flow.h"

namespace gondolin::net {

using EgressFactory =
    std::function<std::unique_ptr<EgressHandlers>(boost::asio::io_context& io, const NetworkOptions& options)>;

// Closes every flow (the guest sees a reset) and says so in the debug log.
class RefuseAllEgress final : public EgressHandlers {
 public:
  void on_http(GuestFlow flow) override { refuse(flow); }
  void on_tls(GuestFlow flow) override { refuse(flow); }
  void on_ssh(GuestFlow flow) override { refuse(flow); }
  void on_other(GuestFlow flow) override { refuse(flow); }

 private:
  static void refuse(GuestFlow& flow);
};

EgressFactory refuse_all_egress();

// Hands every flow to handlers owned elsewhere (the VM's EgressService),
// which must outlive the stack.
EgressFactory borrowed_egress(EgressHandlers& handlers);

}  // namespace gondolin::net
