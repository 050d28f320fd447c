// The guest side of the host's file API: one request, one answer, no state.
#pragma once

#include "proto/file_messages.h"

namespace gondolin::agent {

proto::FileResult perform_file_op(const proto::FileOp& op);
// The same for the host's requests, which a read-only root does not bind.
proto::FileResult perform_host_file_op(const proto::FileOp& op);

}  // namespace gondolin::agent
