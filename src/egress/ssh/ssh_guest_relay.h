// The guest's SSH flow arrives as an asio socket with its first bytes already
// consumed by the classifier; libssh wants a plain blocking descriptor that
// starts at byte zero. This relay, on the VM's io thread, joins the two: it
// sends the consumed prefix to libssh's end first, then copies both ways with
// one fixed buffer per direction (a full side stops reading the other).
#pragma once

#include <boost/asio/local/stream_protocol.hpp>

#include <string>

namespace gondolin::egress {

// When libssh's end closes, the guest's socket is closed too (after the last
// bytes are written), so a guest that never closes cannot pin the relay.
void start_guest_relay(boost::asio::local::stream_protocol::socket guest, std::string prefix,
                       boost::asio::local::stream_protocol::socket inner);

}  // namespace gondolin::egress
